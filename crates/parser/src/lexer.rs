//! The tokenizer, written with nom.
//!
//! TraceQL's lexical rules are context dependent: after `.`, `span.`, `resource.`, …
//! the lexer reads a raw attribute name up to a terminator (so `.http.status_code` and
//! `span.k8s/pod-name` are single tokens), a number glued to unit letters is a duration,
//! and `//` / `/* */` comments are skipped between tokens.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, take_until, take_while, take_while1},
    character::complete::{char, digit1, one_of},
    combinator::{opt, recognize, verify},
    sequence::pair,
};

use crate::ast::{Attribute, AttributeScope, IntrinsicScope};
use crate::duration::parse_duration;
use crate::{Error, Span};

/// A token and where it is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Regex,
    NotRegex,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Bang,
    AndAnd,
    OrOr,
    Pipe,
    Descendant,
    Ancestor,
    Tilde,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
    Int(i64),
    Float(f64),
    Duration(i64),
    Str(String),
    /// A bare word: keyword, intrinsic, function or hint name.
    Ident(String),
    /// `.name`, `span.name`, `parent.resource.name`, …
    Attr(Attribute),
    /// `span:`, `trace:`, … (the intrinsic name follows as an `Ident`).
    ScopeColon(IntrinsicScope),
    Eof,
}

impl TokenKind {
    /// How the token is described in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Int(_) | TokenKind::Float(_) => "a number".into(),
            TokenKind::Duration(_) => "a duration".into(),
            TokenKind::Str(_) => "a string".into(),
            TokenKind::Ident(w) => format!("`{w}`"),
            TokenKind::Attr(_) => "an attribute".into(),
            TokenKind::ScopeColon(s) => format!("`{}:`", s.as_str()),
            TokenKind::Eof => "the end of the query".into(),
            other => format!("`{}`", other.punct()),
        }
    }

    /// The text of a punctuation token.
    pub fn punct(&self) -> &'static str {
        use TokenKind::*;
        match self {
            LBrace => "{",
            RBrace => "}",
            LParen => "(",
            RParen => ")",
            Comma => ",",
            Eq => "=",
            Neq => "!=",
            Lt => "<",
            Lte => "<=",
            Gt => ">",
            Gte => ">=",
            Regex => "=~",
            NotRegex => "!~",
            Plus => "+",
            Minus => "-",
            Star => "*",
            Slash => "/",
            Percent => "%",
            Caret => "^",
            Bang => "!",
            AndAnd => "&&",
            OrOr => "||",
            Pipe => "|",
            Descendant => ">>",
            Ancestor => "<<",
            Tilde => "~",
            NotChild => "!>",
            NotParent => "!<",
            NotDescendant => "!>>",
            NotAncestor => "!<<",
            UnionChild => "&>",
            UnionParent => "&<",
            UnionDescendant => "&>>",
            UnionAncestor => "&<<",
            UnionSibling => "&~",
            _ => "",
        }
    }
}

/// Characters that end an unquoted attribute name (besides whitespace).
const NAME_TERMINATORS: &str = "{}()=~!<>&|^,";

/// True if `c` ends an unquoted attribute name.
pub(crate) fn is_name_terminator(c: char) -> bool {
    c.is_whitespace() || NAME_TERMINATORS.contains(c) || c == '"'
}

/// A lexer failure: where and what.
type LexResult<'a, T> = IResult<&'a str, T, LexError>;

/// nom's error type for the lexer: the remaining input at the failure and the error.
#[derive(Debug)]
pub(crate) struct LexError {
    rest_len: usize,
    error: Option<Error>,
}

impl nom::error::ParseError<&str> for LexError {
    fn from_error_kind(input: &str, _: nom::error::ErrorKind) -> Self {
        LexError {
            rest_len: input.len(),
            error: None,
        }
    }

    fn append(_: &str, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

/// Splits `src` into tokens, ending with [`TokenKind::Eof`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, Error> {
    match tokenize_prefix(src) {
        (tokens, None) => Ok(tokens),
        (_, Some(error)) => Err(error),
    }
}

/// The tokens of `src` up to its first lexical error (ending with [`TokenKind::Eof`]
/// when there is none), and that error.
pub(crate) fn tokenize_prefix(src: &str) -> (Vec<Token>, Option<Error>) {
    let mut lexer = Lexer { src };
    let mut tokens = Vec::new();
    let mut rest = src;
    loop {
        rest = match lexer.skip_trivia(rest) {
            Ok(rest) => rest,
            Err(error) => return (tokens, Some(error)),
        };
        if rest.is_empty() {
            let end = src.len();
            tokens.push(Token {
                kind: TokenKind::Eof,
                span: Span::new(end, end),
            });
            return (tokens, None);
        }
        let start = lexer.offset(rest);
        match lexer.token(rest) {
            Ok((next, kind)) => {
                tokens.push(Token {
                    kind,
                    span: Span::new(start, lexer.offset(next)),
                });
                rest = next;
            }
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                let error = e
                    .error
                    .unwrap_or_else(|| lexer.unexpected_char(src.len() - e.rest_len));
                return (tokens, Some(error));
            }
            Err(nom::Err::Incomplete(_)) => return (tokens, Some(lexer.unexpected_char(start))),
        }
    }
}

struct Lexer<'s> {
    src: &'s str,
}

impl<'s> Lexer<'s> {
    fn offset(&self, rest: &str) -> usize {
        self.src.len() - rest.len()
    }

    fn fail<T>(&self, error: Error) -> LexResult<'s, T> {
        Err(nom::Err::Failure(LexError {
            rest_len: 0,
            error: Some(error),
        }))
    }

    fn unexpected_char(&self, at: usize) -> Error {
        let c = self.src[at..].chars().next().unwrap_or(' ');
        let span = Span::new(at, at + c.len_utf8());
        let err = Error::parse(
            format!("unexpected character `{c}`"),
            span,
            "not part of TraceQL",
        );
        match c {
            '\'' => err.with_hint("strings use double quotes or backticks: \"value\""),
            '[' | ']' => err.with_hint("conditions go inside braces: { .a = 1 }"),
            '&' => err.with_hint("`&` alone is not an operator; did you mean `&&`?"),
            _ => err,
        }
    }

    /// Skips whitespace (space, tab, CR, LF) and comments.
    fn skip_trivia(&self, mut rest: &'s str) -> Result<&'s str, Error> {
        loop {
            let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
            if let Some(after) = trimmed.strip_prefix("//") {
                rest = after.find('\n').map_or("", |i| &after[i..]);
            } else if let Some(after) = trimmed.strip_prefix("/*") {
                let end: IResult<&str, &str> = take_until("*/").parse(after);
                match end {
                    Ok((tail, _)) => rest = &tail[2..],
                    Err(_) => {
                        let at = self.offset(trimmed);
                        return Err(Error::parse(
                            "unterminated comment",
                            Span::new(at, at + 2),
                            "this comment is never closed",
                        )
                        .with_hint("close it with */")
                        .at_end_of_input());
                    }
                }
            } else {
                return Ok(trimmed);
            }
        }
    }

    fn token(&mut self, input: &'s str) -> LexResult<'s, TokenKind> {
        let c = input.chars().next().unwrap_or('\0');
        match c {
            '0'..='9' => self.number(input),
            '.' if input[1..].starts_with(|c: char| c.is_ascii_digit()) => self.number(input),
            '.' => self.attribute(&input[1..], AttributeScope::Unscoped, false, input),
            '"' => self.string(input),
            '`' => self.raw_string(input),
            c if c.is_ascii_alphabetic() || c == '_' => self.word(input),
            _ => self.punct(input),
        }
    }

    fn punct(&self, input: &'s str) -> LexResult<'s, TokenKind> {
        use TokenKind::*;
        let (rest, text) = alt((
            alt((
                tag("!>>"),
                tag("!<<"),
                tag("&>>"),
                tag("&<<"),
                tag("!="),
                tag("!~"),
                tag("!>"),
                tag("!<"),
                tag("&&"),
                tag("&>"),
                tag("&<"),
                tag("&~"),
                tag("||"),
                tag(">>"),
                tag("<<"),
                tag(">="),
                tag("<="),
                tag("=~"),
            )),
            recognize(one_of("{}(),=<>+-*/%^!|~")),
        ))
        .parse(input)?;
        let kind = match text {
            "!>>" => NotDescendant,
            "!<<" => NotAncestor,
            "&>>" => UnionDescendant,
            "&<<" => UnionAncestor,
            "!=" => Neq,
            "!~" => NotRegex,
            "!>" => NotChild,
            "!<" => NotParent,
            "&&" => AndAnd,
            "&>" => UnionChild,
            "&<" => UnionParent,
            "&~" => UnionSibling,
            "||" => OrOr,
            ">>" => Descendant,
            "<<" => Ancestor,
            ">=" => Gte,
            "<=" => Lte,
            "=~" => Regex,
            "{" => LBrace,
            "}" => RBrace,
            "(" => LParen,
            ")" => RParen,
            "," => Comma,
            "=" => Eq,
            "<" => Lt,
            ">" => Gt,
            "+" => Plus,
            "-" => Minus,
            "*" => Star,
            "/" => Slash,
            "%" => Percent,
            "^" => Caret,
            "!" => Bang,
            "|" => Pipe,
            _ => Tilde,
        };
        Ok((rest, kind))
    }

    /// A word: keyword or identifier, or a scope prefix (`span.`, `trace:`, …).
    fn word(&mut self, input: &'s str) -> LexResult<'s, TokenKind> {
        let (rest, word) =
            take_while1(|c: char| c.is_ascii_alphanumeric() || c == '_').parse(input)?;
        if let Some(after) = rest.strip_prefix('.') {
            let scope = match word {
                "parent" => Some((AttributeScope::Unscoped, true)),
                _ => AttributeScope::PREFIXES
                    .iter()
                    .find(|(w, _)| *w == word)
                    .map(|(_, scope)| (*scope, false)),
            };
            if let Some((scope, parent)) = scope {
                if parent {
                    for (prefix, scope) in [
                        ("span.", AttributeScope::Span),
                        ("resource.", AttributeScope::Resource),
                    ] {
                        if let Some(name) = after.strip_prefix(prefix) {
                            return self.attribute(name, scope, true, input);
                        }
                    }
                }
                return self.attribute(after, scope, parent, input);
            }
        }
        if let Some(after) = rest.strip_prefix(':') {
            let scope = IntrinsicScope::ALL.into_iter().find(|s| s.as_str() == word);
            if let Some(scope) = scope {
                return Ok((after, TokenKind::ScopeColon(scope)));
            }
        }
        Ok((rest, TokenKind::Ident(word.to_string())))
    }

    /// An attribute name after its prefix: raw characters up to a terminator, with
    /// `"…"` sections that may hold anything (escapes `\"` and `\\` only).
    fn attribute(
        &self,
        input: &'s str,
        scope: AttributeScope,
        parent: bool,
        token_start: &'s str,
    ) -> LexResult<'s, TokenKind> {
        let mut name = String::new();
        let mut rest = input;
        loop {
            let (after, plain) = take_while(|c: char| !is_name_terminator(c)).parse(rest)?;
            name.push_str(plain);
            rest = after;
            if !rest.starts_with('"') {
                break;
            }
            let quote_at = self.offset(rest);
            let mut chars = rest[1..].char_indices();
            let mut closed = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = Some(i + 2);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => name.push(e),
                        Some((j, e)) => {
                            let at = quote_at + 1 + i;
                            return self.fail(
                                Error::parse(
                                    "invalid escape sequence in a quoted attribute name",
                                    Span::new(at, quote_at + 1 + j + e.len_utf8()),
                                    "only \\\" and \\\\ are allowed here",
                                )
                                .with_hint("write a backslash as \\\\ and a quote as \\\""),
                            );
                        }
                        None => break,
                    },
                    c => name.push(c),
                }
            }
            match closed {
                Some(len) => rest = &rest[len..],
                None => {
                    return self.fail(
                        Error::parse(
                            "unterminated quoted attribute name",
                            Span::new(quote_at, quote_at + 1),
                            "this quote is never closed",
                        )
                        .with_hint("close the name with a matching \"")
                        .at_end_of_input(),
                    );
                }
            }
        }
        if name.is_empty() && rest.len() == input.len() {
            let start = self.offset(token_start);
            let prefix = &token_start[..token_start.len() - input.len()];
            return self.fail(
                Error::parse(
                    format!("expected an attribute name after `{prefix}`"),
                    Span::new(start, self.offset(input)),
                    "attribute name missing",
                )
                .with_hint(format!("for example {prefix}http.method")),
            );
        }
        Ok((
            rest,
            TokenKind::Attr(Attribute {
                scope,
                parent,
                name,
            }),
        ))
    }

    /// A number or a duration. Digits, `.` and letters glued together are tried as a
    /// duration first (`1h30m`, `.5s`, `100ms`); otherwise the longest Go-style number.
    fn number(&self, input: &'s str) -> LexResult<'s, TokenKind> {
        let start = self.offset(input);
        let (_, run) = take_while1(|c: char| c.is_ascii_alphanumeric() || c == '.' || c == 'µ')
            .parse(input)?;
        if run.contains(|c: char| c.is_ascii_alphabetic() || c == 'µ')
            && let Some(ns) = parse_duration(run)
        {
            return Ok((&input[run.len()..], TokenKind::Duration(ns)));
        }
        let digits = || take_while(|c: char| c.is_ascii_digit());
        let mantissa = verify(
            recognize((digits(), opt(char('.')), digits())),
            |m: &str| m.bytes().any(|b| b.is_ascii_digit()),
        );
        let exponent = recognize((one_of("eE"), opt(one_of("+-")), digit1));
        let (rest, text) = recognize(pair(mantissa, opt(exponent))).parse(input)?;
        let span = Span::new(start, start + text.len());
        if text.contains(['.', 'e', 'E']) {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok((rest, TokenKind::Float(f))),
                _ => self.fail(Error::parse(
                    "number out of range",
                    span,
                    "too large for a 64-bit float",
                )),
            }
        } else {
            match text.parse::<i64>() {
                Ok(i) => Ok((rest, TokenKind::Int(i))),
                Err(_) => self.fail(
                    Error::parse(
                        "integer out of range",
                        span,
                        "too large for a 64-bit integer",
                    )
                    .with_hint("integers are 64-bit signed; use a float such as 1e30"),
                ),
            }
        }
    }

    /// A double-quoted string with Go escapes.
    fn string(&self, input: &'s str) -> LexResult<'s, TokenKind> {
        let start = self.offset(input);
        let mut bytes = Vec::new();
        let mut chars = input[1..].char_indices().peekable();
        let at = |i: usize| start + 1 + i;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    return match String::from_utf8(bytes) {
                        Ok(s) => Ok((&input[i + 2..], TokenKind::Str(s))),
                        Err(_) => self.fail(Error::parse(
                            "string is not valid UTF-8",
                            Span::new(start, at(i) + 1),
                            "escapes here produce invalid UTF-8",
                        )),
                    };
                }
                '\n' => break,
                '\\' => {
                    let Some((j, e)) = chars.next() else { break };
                    let simple = match e {
                        'a' => Some(0x07),
                        'b' => Some(0x08),
                        'f' => Some(0x0c),
                        'n' => Some(b'\n'),
                        'r' => Some(b'\r'),
                        't' => Some(b'\t'),
                        'v' => Some(0x0b),
                        '\\' => Some(b'\\'),
                        '"' => Some(b'"'),
                        _ => None,
                    };
                    if let Some(b) = simple {
                        bytes.push(b);
                        continue;
                    }
                    let (digits, radix) = match e {
                        '0'..='7' => (2, 8),
                        'x' => (2, 16),
                        'u' => (4, 16),
                        'U' => (8, 16),
                        _ => (0, 0),
                    };
                    let mut text = String::new();
                    if radix == 8 {
                        text.push(e);
                    }
                    for _ in 0..digits {
                        match chars.peek() {
                            Some((_, d)) if d.is_digit(radix) => {
                                text.push(*d);
                                chars.next();
                            }
                            _ => break,
                        }
                    }
                    let end = chars.peek().map_or(input.len() - 1, |(k, _)| *k);
                    let bad = || {
                        self.fail(
                            Error::parse(
                                "invalid escape sequence in a string",
                                Span::new(at(i), at(end.max(j + e.len_utf8()))),
                                "not a valid escape",
                            )
                            .with_hint(
                                "valid escapes are \\n \\t \\r \\\\ \\\" \\xHH \\uHHHH; \
                                 or use a `backtick string` for raw text",
                            ),
                        )
                    };
                    let want = if radix == 8 { 3 } else { digits };
                    if radix == 0 || text.len() != want {
                        return bad();
                    }
                    let Ok(value) = u32::from_str_radix(&text, radix) else {
                        return bad();
                    };
                    if e == 'u' || e == 'U' {
                        let Some(ch) = char::from_u32(value) else {
                            return bad();
                        };
                        let mut buf = [0; 4];
                        bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    } else if value > 0xff {
                        return bad();
                    } else {
                        bytes.push(value as u8);
                    }
                }
                c => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        self.fail(
            Error::parse(
                "unterminated string",
                Span::new(start, start + 1),
                "this string is never closed",
            )
            .with_hint("close it with \"; for text spanning lines use a `backtick string`")
            .at_end_of_input(),
        )
    }

    /// A backtick string: raw text, no escapes.
    fn raw_string(&self, input: &'s str) -> LexResult<'s, TokenKind> {
        let start = self.offset(input);
        let body: IResult<&str, &str> = take_until("`").parse(&input[1..]);
        match body {
            Ok((rest, text)) => Ok((&rest[1..], TokenKind::Str(text.to_string()))),
            Err(_) => self.fail(
                Error::parse(
                    "unterminated raw string",
                    Span::new(start, start + 1),
                    "this backtick is never closed",
                )
                .at_end_of_input(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        tokenize(src).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn numbers_at_the_end_of_input() {
        assert_eq!(kinds("1.5"), vec![TokenKind::Float(1.5), TokenKind::Eof]);
        assert_eq!(kinds("1."), vec![TokenKind::Float(1.0), TokenKind::Eof]);
        assert_eq!(kinds(".25"), vec![TokenKind::Float(0.25), TokenKind::Eof]);
        assert_eq!(
            kinds("2.5E-3"),
            vec![TokenKind::Float(0.0025), TokenKind::Eof]
        );
        assert_eq!(kinds("12"), vec![TokenKind::Int(12), TokenKind::Eof]);
        assert_eq!(
            kinds("> 1.5"),
            vec![TokenKind::Gt, TokenKind::Float(1.5), TokenKind::Eof]
        );
    }
}

//! What each piece of a query is, for syntax highlighting: the parser's own lexer and
//! vocabulary decide, so a prompt colours a query exactly as it will be read.

use std::ops::Range;

use crate::ast::Function;
use crate::lexer::{TokenKind, tokenize_prefix};
use crate::vocab::field_words;

/// What a piece of a query is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A value keyword, status, kind, `nil`, an unscoped intrinsic or `with`.
    Keyword,
    /// A function name (`count`, `rate`, `by`, …).
    Function,
    /// An attribute (`.a`, `span.http.route`) or a scoped intrinsic (`span:duration`).
    Field,
    /// A string.
    String,
    /// A number or duration.
    Number,
    /// An operator, bracket or comma.
    Operator,
    /// Another word (a hint name, a typo).
    Word,
    /// Text the lexer cannot read (from an unterminated string or a stray character on).
    Invalid,
}

/// The pieces of `src` in order with their classes; whitespace and comments between
/// them are left out. A lexical error does not stop highlighting: the rest of the text
/// is one [`Class::Invalid`] piece.
pub fn highlight(src: &str) -> Vec<(Range<usize>, Class)> {
    let (tokens, error) = tokenize_prefix(src);
    let words = field_words();
    let mut pieces = Vec::with_capacity(tokens.len() + 1);
    let mut after_scope = false;
    for token in &tokens {
        let class = match &token.kind {
            TokenKind::Eof => break,
            TokenKind::Str(_) => Class::String,
            TokenKind::Int(_) | TokenKind::Float(_) | TokenKind::Duration(_) => Class::Number,
            TokenKind::Attr(_) | TokenKind::ScopeColon(_) => Class::Field,
            TokenKind::Ident(_) if after_scope => Class::Field,
            TokenKind::Ident(w) if Function::from_name(w).is_some() => Class::Function,
            TokenKind::Ident(w) if w == "with" || words.contains(&w.as_str()) => Class::Keyword,
            TokenKind::Ident(_) => Class::Word,
            _ => Class::Operator,
        };
        after_scope = matches!(token.kind, TokenKind::ScopeColon(_));
        pieces.push((token.span.start..token.span.end, class));
    }
    if error.is_some() {
        let start = pieces.last().map_or(0, |(r, _)| r.end);
        let start = start + (src.len() - start - src[start..].trim_start().len());
        if start < src.len() {
            pieces.push((start..src.len(), Class::Invalid));
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(src: &str) -> Vec<(&str, Class)> {
        highlight(src)
            .into_iter()
            .map(|(r, c)| (&src[r], c))
            .collect()
    }

    #[test]
    fn pieces_are_classified_by_the_lexer_and_vocabulary() {
        use Class::*;
        assert_eq!(
            classes(r#"{ span:duration > 1s && .a = "x" } | count() > 2 with(sample=true)"#),
            vec![
                ("{", Operator),
                ("span:", Field),
                ("duration", Field),
                (">", Operator),
                ("1s", Number),
                ("&&", Operator),
                (".a", Field),
                ("=", Operator),
                ("\"x\"", String),
                ("}", Operator),
                ("|", Operator),
                ("count", Function),
                ("(", Operator),
                (")", Operator),
                (">", Operator),
                ("2", Number),
                ("with", Keyword),
                ("(", Operator),
                ("sample", Word),
                ("=", Operator),
                ("true", Keyword),
                (")", Operator),
            ]
        );
    }

    #[test]
    fn an_unterminated_string_is_invalid_from_its_quote() {
        assert_eq!(
            classes(r#"{ status = error && name = "chec"#),
            vec![
                ("{", Class::Operator),
                ("status", Class::Keyword),
                ("=", Class::Operator),
                ("error", Class::Keyword),
                ("&&", Class::Operator),
                ("name", Class::Keyword),
                ("=", Class::Operator),
                ("\"chec", Class::Invalid),
            ]
        );
    }
}

//! The REPL's line editor helper: tab completion (TraceQL words, scopes, intrinsics,
//! the store's attribute names and values, backslash commands), syntax highlighting, and
//! multi-line input (an open `{` or `(`, an open string or a trailing operator continue
//! the query on the next line).

use std::borrow::Cow;

use console::Style;
use rustyline::Context;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use traceql_parser::ast::{Intrinsic, IntrinsicScope};
use traceql_parser::{FIELD_WORDS, FUNCTION_WORDS};

/// The backslash commands, with their help.
pub const COMMANDS: &[(&str, &str)] = &[
    ("\\help", "this list"),
    (
        "\\data STORE",
        "search another store (a directory or s3://BUCKET/PREFIX)",
    ),
    ("\\format table|json|jsonl|csv", "how results are printed"),
    ("\\limit N", "at most N traces per search (default 20)"),
    ("\\spss N", "at most N spans shown per spanset (default 3)"),
    (
        "\\step DURATION|auto",
        "bucket width of metrics queries (default auto: about 240 points)",
    ),
    (
        "\\instant",
        "metrics queries give one value for the whole range (toggle)",
    ),
    (
        "\\spans",
        "show matched spans under each trace in tables (toggle)",
    ),
    (
        "\\timing",
        "print time and what was read after each search (toggle)",
    ),
    ("\\explain QUERY", "show the plans of a query"),
    ("\\trace ID", "show a trace as a waterfall"),
    ("\\q", "quit (or Ctrl-D)"),
];

const SCOPES: &[&str] = &[
    "span.",
    "resource.",
    "event.",
    "link.",
    "instrumentation.",
    "span:",
    "trace:",
    "event:",
    "link:",
    "instrumentation:",
];

/// Operators after which a query obviously continues.
const CONTINUING: &[&str] = &[
    "&&", "||", "|", "=", "!=", ">=", "<=", "=~", "!~", "+", "-", "*", "/", "%", "^", "~", ">>",
    "<<", "!>", "!<", "!>>", "!<<", "&>", "&<", "&>>", "&<<", "&~", ",",
];

/// Completion candidates and highlighting for the REPL.
pub struct ReplHelper {
    /// Attribute names of the store (`resource.service.name`, …).
    pub attributes: Vec<String>,
    /// Known values per field (`resource.service.name` → services).
    pub values: Vec<(String, Vec<String>)>,
    /// Whether to colour the input.
    pub color: bool,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !"{}()=!<>&|~,\"".contains(c)
}

/// Open brackets and whether a string is open, outside strings.
fn balance(text: &str) -> (i32, i32, bool) {
    let (mut braces, mut parens, mut in_string, mut escaped) = (0, 0, false, false);
    for c in text.chars() {
        if in_string {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => braces += 1,
            '}' => braces -= 1,
            '(' => parens += 1,
            ')' => parens -= 1,
            _ => {}
        }
    }
    (braces, parens, in_string)
}

/// Whether `text` is a query that continues on the next line.
pub fn incomplete(text: &str) -> bool {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('\\') {
        return false;
    }
    let (braces, parens, in_string) = balance(trimmed);
    braces > 0 || parens > 0 || in_string || CONTINUING.iter().any(|op| trimmed.ends_with(op))
}

impl ReplHelper {
    fn words(&self) -> Vec<String> {
        let mut words: Vec<String> = FIELD_WORDS
            .iter()
            .chain(FUNCTION_WORDS)
            .map(|w| w.to_string())
            .collect();
        words.extend(Intrinsic::UNSCOPED.iter().map(|(w, _)| w.to_string()));
        words.extend(SCOPES.iter().map(|s| s.to_string()));
        words.push("with".into());
        words
    }

    fn fields(&self) -> Vec<String> {
        let mut fields = self.attributes.clone();
        for scope in [
            IntrinsicScope::Span,
            IntrinsicScope::Trace,
            IntrinsicScope::Event,
            IntrinsicScope::Link,
            IntrinsicScope::Instrumentation,
        ] {
            for (name, _) in scope.intrinsics() {
                fields.push(format!("{}:{name}", scope.as_str()));
            }
        }
        // Unscoped forms of the attributes: `.service.name`.
        for a in &self.attributes {
            if let Some((_, key)) = a.split_once('.') {
                fields.push(format!(".{key}"));
            }
        }
        fields.sort();
        fields.dedup();
        fields
    }

    /// Candidates for a string being typed after `field op "`.
    fn values_for(&self, before: &str) -> Option<Vec<String>> {
        let before = before.trim_end();
        let before = before
            .strip_suffix("=~")
            .or_else(|| before.strip_suffix("!="))
            .or_else(|| before.strip_suffix("!~"))
            .or_else(|| before.strip_suffix('='))?
            .trim_end();
        let field = &before[before
            .rfind(|c: char| !is_word_char(c))
            .map_or(0, |i| i + 1)..];
        let wanted: Vec<String> = if field == "name" || field == "span:name" {
            vec!["name".into()]
        } else if let Some(key) = field.strip_prefix('.') {
            vec![format!("span.{key}"), format!("resource.{key}")]
        } else {
            vec![field.to_string()]
        };
        let mut out: Vec<String> = self
            .values
            .iter()
            .filter(|(f, _)| wanted.contains(f))
            .flat_map(|(_, v)| v.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        Some(out)
    }

    /// The completions of `line` at `pos`: where the replaced word starts, and the
    /// candidates.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let head = &line[..pos];
        // Inside a string: values of the field it is compared with.
        let (_, _, in_string) = balance(head);
        if in_string && let Some(quote) = head.rfind('"') {
            let partial = &head[quote + 1..];
            let found = self.values_for(&head[..quote]).unwrap_or_default();
            let picks = found
                .into_iter()
                .filter(|v| v.starts_with(partial))
                .map(|v| format!("{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            return (quote + 1, picks);
        }
        let start = head
            .rfind(|c: char| !is_word_char(c) && c != '\\')
            .map_or(0, |i| i + 1);
        let word = &head[start..];
        let pool: Vec<String> = if word.starts_with('\\') {
            COMMANDS
                .iter()
                .map(|(c, _)| c.split_whitespace().next().unwrap_or(c).to_string())
                .collect()
        } else if word.contains('.') || word.contains(':') {
            self.fields()
        } else {
            self.words()
        };
        let mut picks: Vec<String> = pool
            .into_iter()
            .filter(|w| w.starts_with(word) && w != word)
            .collect();
        picks.sort();
        picks.dedup();
        (start, picks)
    }

    /// `line` with TraceQL syntax coloured.
    pub fn colored(&self, line: &str) -> String {
        let keyword = Style::new().blue().bold().force_styling(true);
        let string = Style::new().green().force_styling(true);
        let number = Style::new().cyan().force_styling(true);
        let field = Style::new().yellow().force_styling(true);
        let words = self.words();
        let mut out = String::with_capacity(line.len() * 2);
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '"' {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let end = (j + 1).min(chars.len());
                out.push_str(
                    &string
                        .apply_to(chars[i..end].iter().collect::<String>())
                        .to_string(),
                );
                i = end;
            } else if is_word_char(c) || c == '\\' {
                let mut j = i;
                while j < chars.len() && (is_word_char(chars[j]) || (j == i && chars[j] == '\\')) {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let styled = if c == '\\' || words.contains(&word) {
                    keyword.apply_to(&word).to_string()
                } else if c.is_ascii_digit() {
                    number.apply_to(&word).to_string()
                } else if c == '.' || word.contains('.') || word.contains(':') {
                    field.apply_to(&word).to_string()
                } else {
                    word
                };
                out.push_str(&styled);
                i = j;
            } else {
                out.push(c);
                i += 1;
            }
        }
        out
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, picks) = self.candidates(line, pos);
        Ok((
            start,
            picks
                .into_iter()
                .map(|p| Pair {
                    display: p.clone(),
                    replacement: p,
                })
                .collect(),
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.color {
            Cow::Owned(self.colored(line))
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl rustyline::Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ReplHelper {
        ReplHelper {
            attributes: vec!["resource.service.name".into(), "span.http.route".into()],
            values: vec![(
                "resource.service.name".into(),
                vec!["checkout".into(), "cart".into()],
            )],
            color: false,
        }
    }

    #[test]
    fn completes_words_fields_values_and_commands() {
        let h = helper();
        assert_eq!(
            h.candidates("{ stat", 6),
            (2, vec!["status".into(), "statusMessage".into()])
        );
        assert_eq!(
            h.candidates("{ resource.se", 13),
            (2, vec!["resource.service.name".into()])
        );
        assert_eq!(
            h.candidates("{ .ser", 6).1,
            vec![".service.name".to_string()]
        );
        assert_eq!(
            h.candidates("{ span:d", 8).1,
            vec!["span:duration".to_string()]
        );
        assert_eq!(
            h.candidates("{ .service.name = \"c", 20),
            (19, vec!["cart\"".into(), "checkout\"".into()])
        );
        assert_eq!(h.candidates("\\ti", 3), (0, vec!["\\timing".into()]));
    }

    #[test]
    fn open_brackets_strings_and_trailing_operators_continue_the_query() {
        assert!(incomplete("{ status = error"));
        assert!(incomplete("{ status = error } &&"));
        assert!(incomplete("({ a = 1 } | count()"));
        assert!(incomplete("{ name = \"x"));
        assert!(!incomplete("{ status = error }"));
        assert!(!incomplete("< duration > 1s >"));
        assert!(!incomplete("\\limit 5"));
        assert!(!incomplete(""));
    }

    #[test]
    fn highlighting_keeps_the_text() {
        let h = ReplHelper {
            color: true,
            ..helper()
        };
        let line = r#"{ resource.service.name = "checkout" && duration > 1s } | count() > 2"#;
        assert_eq!(console::strip_ansi_codes(&h.colored(line)), line);
        assert_ne!(h.colored(line), line);
    }
}

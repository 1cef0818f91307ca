//! The REPL's line editor helper: tab completion (TraceQL words, scopes, intrinsics,
//! the store's attribute names and values, backslash commands), syntax highlighting, and
//! multi-line input (an open `{` or `(`, an open string or a trailing operator continue
//! the query on the next line). Highlighting and multi-line input use the parser's own
//! lexer, and the words come from its vocabulary.

use std::borrow::Cow;

use console::Style;
use rustyline::Context;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use traceql_parser::ast::IntrinsicScope;
use traceql_parser::highlight::{Class, highlight};
use traceql_parser::vocab::{FUNCTION_WORDS, field_words, scope_prefixes};

/// The backslash commands, with their help.
pub const COMMANDS: &[(&str, &str)] = &[
    ("\\help", "this list"),
    (
        "\\data STORE",
        "search another store (a directory or s3://BUCKET/PREFIX)",
    ),
    ("\\format table|json|jsonl|csv", "how results are printed"),
    ("\\limit N", "at most N traces per search (default 20)"),
    (
        "\\order newest|oldest|slowest",
        "which traces a search returns first (default newest)",
    ),
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

/// Whether `text` is a query that continues on the next line: the parser stops at its
/// end with an open bracket or string or a trailing operator.
pub fn incomplete(text: &str) -> bool {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('\\') {
        return false;
    }
    matches!(traceql_parser::parse(trimmed), Err(e) if e.incomplete)
}

/// Where the string being typed at the end of `head` opens, if one is open.
fn open_string(head: &str) -> Option<usize> {
    match highlight(head).last() {
        Some((range, Class::Invalid)) if head[range.clone()].starts_with('"') => Some(range.start),
        _ => None,
    }
}

impl ReplHelper {
    fn words(&self) -> Vec<String> {
        let mut words: Vec<String> = field_words()
            .into_iter()
            .chain(FUNCTION_WORDS)
            .map(|w| w.to_string())
            .collect();
        words.extend(scope_prefixes());
        words.push("with".into());
        words
    }

    fn fields(&self) -> Vec<String> {
        let mut fields = self.attributes.clone();
        for scope in IntrinsicScope::ALL {
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
        if let Some(quote) = open_string(head) {
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

    /// `line` with TraceQL syntax coloured as the parser reads it; a backslash command
    /// has its name coloured.
    pub fn colored(&self, line: &str) -> String {
        let keyword = Style::new().blue().bold().force_styling(true);
        if line.trim_start().starts_with('\\') {
            let end = line.find(char::is_whitespace).unwrap_or(line.len());
            return format!("{}{}", keyword.apply_to(&line[..end]), &line[end..]);
        }
        let string = Style::new().green().force_styling(true);
        let number = Style::new().cyan().force_styling(true);
        let field = Style::new().yellow().force_styling(true);
        let invalid = Style::new().red().force_styling(true);
        let mut out = String::with_capacity(line.len() * 2);
        let mut at = 0;
        for (range, class) in highlight(line) {
            out.push_str(&line[at..range.start]);
            let text = &line[range.clone()];
            let style = match class {
                Class::Keyword | Class::Function => Some(&keyword),
                Class::String => Some(&string),
                Class::Number => Some(&number),
                Class::Field => Some(&field),
                Class::Invalid => Some(&invalid),
                Class::Operator | Class::Word => None,
            };
            match style {
                Some(style) => out.push_str(&style.apply_to(text).to_string()),
                None => out.push_str(text),
            }
            at = range.end;
        }
        out.push_str(&line[at..]);
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
        assert!(incomplete("({ .a = 1 } | count()"));
        assert!(incomplete("{ name = \"x"));
        assert!(!incomplete("{ status = error }"));
        assert!(!incomplete("< duration > 1s >"));
        assert!(!incomplete("\\limit 5"));
        assert!(!incomplete(""));
        // A mistake before the end is not waited on: the query runs and shows it.
        assert!(!incomplete("{ .a == 1 }"));
        assert!(incomplete("{ } | rate() by ("));
        assert!(incomplete("{ .a = `multi"));
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
        for line in [
            "{ name = \"unterminated",
            "\\limit 5",
            "  { .a // comment\n }",
        ] {
            assert_eq!(console::strip_ansi_codes(&h.colored(line)), line);
            assert_ne!(h.colored(line), line);
        }
    }
}

//! The one error type of the parser and validator, and how it is rendered.

use std::fmt;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode,
};
use serde::Serialize;

use crate::Span;

/// Which of the three outcomes of reading a query went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The text is not TraceQL: a lexical or syntax error.
    Parse,
    /// The query is TraceQL but means nothing: mismatched types, a bad regex, `status = nil`, …
    Validation,
    /// The query is valid TraceQL that is not supported yet (for example `parent.` attributes).
    Unsupported,
}

impl ErrorKind {
    /// Stable machine-readable code, shown in diagnostics (`traceql::parse`, …).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Parse => "traceql::parse",
            ErrorKind::Validation => "traceql::validation",
            ErrorKind::Unsupported => "traceql::unsupported",
        }
    }
}

/// A labelled place in the query text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there.
    pub message: String,
}

/// An error with its position in the query, a label under the offending text and an
/// optional hint. Render it with [`Error::render`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Error {
    /// Parse, validation or unsupported.
    pub kind: ErrorKind,
    /// One sentence saying what is wrong.
    pub message: String,
    /// The offending text; the first label is the primary one.
    pub labels: Vec<Label>,
    /// A suggestion for fixing it, when there is one.
    pub hint: Option<String>,
    /// The input ended before the query did (an open bracket or string, a trailing
    /// operator): more text could make it whole. A prompt reads another line then.
    #[serde(skip)]
    pub incomplete: bool,
}

impl Error {
    fn new(
        kind: ErrorKind,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        Error {
            kind,
            message: message.into(),
            labels: vec![Label {
                span,
                message: label.into(),
            }],
            hint: None,
            incomplete: false,
        }
    }

    /// A syntax or lexical error at `span`.
    pub fn parse(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Error::new(ErrorKind::Parse, message, span, label)
    }

    /// A semantic error at `span`.
    pub fn validation(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Error::new(ErrorKind::Validation, message, span, label)
    }

    /// A construct that is valid TraceQL but not supported yet; `what` names it.
    pub fn unsupported(what: &str, span: Span) -> Self {
        Error::new(
            ErrorKind::Unsupported,
            format!("{what} is not supported yet"),
            span,
            "unsupported",
        )
    }

    /// Marks the error as caused by the input ending too early.
    pub(crate) fn at_end_of_input(mut self) -> Self {
        self.incomplete = true;
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// The primary position.
    pub fn span(&self) -> Span {
        self.labels.first().map(|l| l.span).unwrap_or_default()
    }

    /// 1-based line and column (in characters) of the primary position in `source`.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        let offset = self.span().start.min(source.len());
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Renders the error as a report: message, `query:line:col`, the source line with the
    /// offending text underlined, and the hint. `color` selects ANSI colours.
    pub fn render(&self, source: &str, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        let report = Report {
            error: self,
            source: NamedSource::new("query", source.to_string()),
        };
        let mut out = String::new();
        if handler.render_report(&mut out, &report).is_err() {
            return self.to_string();
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// An [`Error`] together with the text it points into, as miette wants it.
struct Report<'a> {
    error: &'a Error,
    source: NamedSource<String>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.error, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.error, f)
    }
}

impl std::error::Error for Report<'_> {}

impl Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.error.kind.code()))
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.error
            .hint
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.error.labels.iter().enumerate().map(
            |(i, l)| {
                let text = (!l.message.is_empty()).then(|| l.message.clone());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, l.span)
                } else {
                    LabeledSpan::new_with_span(text, l.span)
                }
            },
        )))
    }
}

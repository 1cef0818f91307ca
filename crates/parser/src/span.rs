//! Byte ranges into the query text.

use serde::Serialize;

/// A byte range `start..end` into the query text a node was parsed from.
///
/// Spans are ignored by equality and hashing, so two ASTs compare equal when they mean
/// the same query, whatever whitespace or spelling produced them (the same convention as
/// sqlparser-rs). This is what makes `parse(print(ast)) == ast` a meaningful check.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (exclusive).
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Number of bytes covered.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when the span covers no bytes (for example the end of input).
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Eq for Span {}

impl std::hash::Hash for Span {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl From<Span> for miette::SourceSpan {
    fn from(span: Span) -> Self {
        (span.start, span.len()).into()
    }
}

//! The TraceQL syntax tree.
//!
//! Every node that stands for source text carries its [`Span`]; spans are ignored by
//! equality, so `parse(&q.to_string())? == q` holds for every query `q` (see `Display`,
//! which prints the canonical form).

mod field;
mod metrics;
mod pipeline;
pub mod visit;
mod words;

pub use field::*;
pub use metrics::*;
pub use pipeline::*;
pub use words::{Function, precedence};

use serde::Serialize;

use crate::Span;

/// A whole query: a search pipeline or a metrics query, with optional hints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Query {
    /// What the query computes.
    pub body: QueryBody,
    /// The `with(name=value, …)` hints, in order (when a name repeats, the last one wins).
    pub hints: Vec<Hint>,
    /// The whole query.
    pub span: Span,
}

impl Query {
    /// The value of hint `name`, honouring "the last one wins".
    pub fn hint(&self, name: &str) -> Option<&Literal> {
        self.hints
            .iter()
            .rev()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }
}

/// The two kinds of query.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryBody {
    /// A search: a pipeline of spanset stages that selects traces and spans.
    Search(Pipeline),
    /// A metrics query: time series computed from the spans a pipeline selects.
    Metrics(MetricsExpr),
}

/// One `name=value` of a `with(…)` hint list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hint {
    /// The hint's name, e.g. `most_recent`.
    pub name: String,
    /// Its value.
    pub value: Literal,
    /// `name=value`.
    pub span: Span,
}

//! TraceQL search over a store: the [`Engine`], its options and errors, and the
//! Tempo-shaped [`SearchResponse`].

pub(crate) mod engine;
mod response;
pub(crate) mod stats;

pub use engine::{Engine, EngineError, Explanation, SearchOptions, register};
pub use response::{Attribute, SearchMetrics, SearchResponse, SpanResult, SpanSet, TraceResult};
pub use stats::SearchStats;

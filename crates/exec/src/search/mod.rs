//! TraceQL search over a store: the [`Engine`], its options and errors, and the
//! Tempo-shaped [`SearchResponse`].

mod engine;
mod response;
mod stats;

pub use engine::{Engine, EngineError, Explanation, SearchOptions, register};
pub use response::{Attribute, SearchMetrics, SearchResponse, SpanResult, SpanSet, TraceResult};
pub use stats::SearchStats;

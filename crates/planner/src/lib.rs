//! Lowers TraceQL to DataFusion logical plans over the span table.
//!
//! The planner owns the logical span schema and the span-set extension nodes; it knows
//! no files. It arrives with the search engine; today it re-exports the language checks
//! it builds on.

pub use traceql_parser::{parse_and_validate, validate};

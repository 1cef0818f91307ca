//! Lowers TraceQL to DataFusion logical plans over the span table.
//!
//! The planner knows the logical span schema ([`schema`]) but no files: the block
//! writer in `traceql-exec` produces tables of this shape, and plans refer to columns
//! by these names. Field expressions are evaluated by [`eval`].

pub mod eval;
pub mod facts;
pub mod lower;
pub mod metrics;
pub mod native;
pub mod ops;
pub mod prune;
pub mod schema;

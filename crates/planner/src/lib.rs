//! Lowers TraceQL to DataFusion logical plans over the span table.
//!
//! The planner knows the logical span table (`traceql_format::schema`) but no files:
//! every kind of block presents its spans in that shape, and plans refer to columns by
//! its names. Field expressions are evaluated by [`eval`]. What goes wrong is a
//! [`PlanError`], carried through DataFusion and found again with [`PlanError::find`].

pub mod error;
pub mod eval;
pub mod insights;
pub mod lower;
pub mod metrics;
pub mod native;
pub mod ops;
pub mod prune;
pub mod quantiles;
pub mod services;
pub mod shown;

pub use error::PlanError;

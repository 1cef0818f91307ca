//! The planner's integration tests, in one binary: each span-set operator on hand-built
//! in-memory batches, and EXPLAIN snapshots of a representative query of each operator
//! and each metrics function.

mod explain;
mod operators;

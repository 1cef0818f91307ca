//! TraceQL search end to end: Tempo's conformance cases, a differential test against a
//! reference evaluator on generated traces and queries, and golden query files.

mod common;
mod conformance;
mod differential;
mod golden;
mod insights;
mod limits;
mod metrics;
mod reference;
mod s3;
mod services;
mod structural;
mod tempo_blocks;

//! Evaluation of field expressions over span-table batches: the exact TraceQL
//! semantics of comparisons, arrays, `nil`, regexes and the event/link scopes, wrapped
//! as DataFusion scalar functions so a filter becomes a flag column of the scan.

pub mod columns;
pub mod program;
pub mod udf;
pub mod value;

//! Per-trace span-set operators: extension nodes of the logical plan with physical
//! operators that read spans grouped by trace and append result columns.
//!
//! Spansets travel through the plan as *membership columns*: a nullable `Int32` per
//! intermediate result, giving for each span the index (within its trace) of the
//! spanset it belongs to, or null. Every span belongs to at most one spanset of any
//! intermediate result, so one column is enough. Row-local steps (a filter inside a
//! pipeline, `coalesce()`) are ordinary projections; steps that need the whole trace
//! are the operators here, each in its own module:
//!
//! [`registry`] lists them all in one place ([`TraceOp`]); the lowering, the logical
//! node, the physical operator and the extension planner know them only through it.
//! Adding an operator is its module plus one line there.
//!
//! [`node::TraceNode`] and [`exec::TraceExec`] hold what the operators share: the
//! logical node, the `ExecutionPlan` that requires input ordered by `trace_id`, and the
//! stream that hands the operator whole traces.

pub mod aggregate;
pub mod exec;
pub mod group_by;
pub mod insights;
pub mod node;
pub mod planner;
pub mod registry;
pub mod service_edges;
pub mod spanset_logic;
pub mod structural;

use crate::error::PlanError;
use std::fmt;
use std::hash::Hash;
use std::ops::Range;

use datafusion::arrow::array::{
    ArrayRef, FixedSizeBinaryArray, Int32Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::Field;
use datafusion::error::Result;

use traceql_format::schema::columns;

pub use registry::TraceOp;

/// An operator that appends columns computed per trace.
pub trait TraceOperator:
    fmt::Debug + Clone + PartialEq + Eq + Hash + PartialOrd + Send + Sync + Unpin + 'static
{
    /// The operator's name in plans.
    fn name(&self) -> &'static str;

    /// The columns it appends.
    fn outputs(&self) -> Vec<Field>;

    /// Describes the operator in TraceQL terms for `EXPLAIN`.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;

    /// Computes the appended columns for `batch`, whose rows are whole traces:
    /// `traces` are the row ranges of the traces, in order, covering the batch.
    fn evaluate(&self, batch: &RecordBatch, traces: &[Range<usize>]) -> Result<Vec<ArrayRef>>;
}

/// The column `name` of `batch`, downcast to `T`.
pub fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    traceql_format::arrays::column(batch, name)
        .map_err(|e| PlanError::internal(format!("span-set operator input: {e}")))
}

/// The text at `row` of `array`, `None` where it is null.
pub fn text_at(array: &StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}

/// Columns (`Utf8`) of one attribute each, in order of preference: a span's value is
/// the first present — what `coalesce` gives, without copying text into a new column.
pub struct FirstOf<'a>(Vec<&'a StringArray>);

impl<'a> FirstOf<'a> {
    /// The `columns` of `batch`.
    pub fn new(batch: &'a RecordBatch, columns: &[String]) -> Result<Self> {
        Ok(FirstOf(
            columns
                .iter()
                .map(|name| column::<StringArray>(batch, name))
                .collect::<Result<_>>()?,
        ))
    }

    /// The first value present at `row`.
    pub fn first(&self, row: usize) -> Option<&'a str> {
        self.0.iter().find_map(|array| text_at(array, row))
    }
}

/// A membership column of `batch`.
pub fn membership<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int32Array> {
    column::<Int32Array>(batch, name)
}

/// A nullable `Int32` membership column field.
pub fn membership_field(name: &str) -> Field {
    Field::new(name, datafusion::arrow::datatypes::DataType::Int32, true)
}

/// The row ranges of the traces in `batch` (rows of one trace are contiguous). Parts
/// of one trace written to different blocks have their own trace start and stay apart.
pub fn trace_ranges(batch: &RecordBatch) -> Result<Vec<Range<usize>>> {
    let ids = column::<FixedSizeBinaryArray>(batch, columns::TRACE_ID)?;
    let starts = column::<UInt64Array>(batch, columns::TRACE_START_UNIX_NANO)?;
    let mut ranges = Vec::new();
    let mut start = 0;
    for row in 1..ids.len() {
        if ids.value(row) != ids.value(row - 1) || starts.value(row) != starts.value(row - 1) {
            ranges.push(start..row);
            start = row;
        }
    }
    if ids.len() > start {
        ranges.push(start..ids.len());
    }
    Ok(ranges)
}

/// Whether row `i` of `a` and row `j` of `b` belong to the same trace (and block).
pub fn same_trace(a: &RecordBatch, i: usize, b: &RecordBatch, j: usize) -> Result<bool> {
    let (ids_a, ids_b) = (
        column::<FixedSizeBinaryArray>(a, columns::TRACE_ID)?,
        column::<FixedSizeBinaryArray>(b, columns::TRACE_ID)?,
    );
    let (starts_a, starts_b) = (
        column::<UInt64Array>(a, columns::TRACE_START_UNIX_NANO)?,
        column::<UInt64Array>(b, columns::TRACE_START_UNIX_NANO)?,
    );
    Ok(ids_a.value(i) == ids_b.value(j) && starts_a.value(i) == starts_b.value(j))
}

/// The distinct spanset ids present in `rows` of the membership columns, in order of
/// first appearance.
pub fn spanset_ids(members: &[&Int32Array], rows: Range<usize>) -> Vec<i32> {
    let mut ids: Vec<i32> = Vec::new();
    for m in members {
        for row in rows.clone() {
            if m.is_valid(row) {
                let id = m.value(row);
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

use datafusion::arrow::array::Array;

//! `meta.json`: what a block holds. Written after `data.parquet`; a block without it is
//! invisible, so a crashed write never shows half a block.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::FormatError;
use crate::facts::Facts;
use crate::schema::{TypedAttribute, scope_of_prefix};
use crate::value::ValueType;

/// The block format version this code writes and reads. Version 2 added the
/// `child_count` column; blocks of version 1 are read, without child counts.
pub const FORMAT_VERSION: u32 = 2;

/// The first format version whose blocks have the `child_count` column.
pub const CHILD_COUNT_VERSION: u32 = 2;

/// A typed attribute column as `meta.json` records it (see [`TypedAttribute`] for the
/// same with the scope parsed).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypedColumn {
    /// Column name, e.g. `resource.service.name`.
    pub name: String,
    /// `span` or `resource`.
    pub scope: String,
    /// The attribute key.
    pub key: String,
    /// The value type.
    #[serde(rename = "type")]
    pub value_type: ValueType,
}

impl TypedColumn {
    /// The column with its scope parsed; `None` for a scope that has no typed columns.
    pub fn attribute(&self) -> Option<TypedAttribute> {
        Some(TypedAttribute {
            scope: scope_of_prefix(&self.scope)?,
            key: self.key.clone(),
            value_type: self.value_type,
            column: self.name.clone(),
        })
    }
}

/// The contents of `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// The kind of block: [`super::FORMAT_NAME`] for traceql's own blocks; other kinds
    /// (Grafana Tempo's) give their own name here when described as a `BlockMeta`.
    pub format: String,
    /// Format version, [`FORMAT_VERSION`] for blocks this code writes.
    pub version: u32,
    /// Block id (a UUID).
    pub id: String,
    /// Earliest span start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// Latest span end, unix nanoseconds.
    pub end_unix_nano: u64,
    /// Number of traces.
    pub traces: u64,
    /// Number of spans (rows).
    pub spans: u64,
    /// Smallest trace id, hex.
    pub min_trace_id: String,
    /// Largest trace id, hex.
    pub max_trace_id: String,
    /// Number of Parquet row groups.
    pub row_groups: u64,
    /// Size of `data.parquet` in bytes.
    pub bytes: u64,
    /// The typed attribute columns of this block.
    pub typed_columns: Vec<TypedColumn>,
    /// The keys found in the fallback attribute lists, per scope (`span`, `resource`,
    /// `instrumentation`): where a search must look beyond the typed columns. `None`
    /// when not recorded (any key may be there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_keys: Option<BTreeMap<String, BTreeSet<String>>>,
    /// The distinct values of string columns that have at most
    /// [`MAX_DICTIONARY_VALUES`] of them in this block (`name` and typed string
    /// attribute columns), so a search for a value the block lacks can skip it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dictionaries: BTreeMap<String, BTreeSet<String>>,
    /// Traces per power-of-two trace duration: entry `i` counts the traces whose
    /// duration falls in [`duration_bucket_bounds`]`(i)`. Empty when not recorded
    /// (blocks written before it was), so searches for the slowest traces can skip
    /// blocks and aim their rounds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_durations: Vec<u64>,
    /// Some traces of this block may have spans in other blocks: an ingest wrote it
    /// whose input outgrew its memory budget. `traceql compact` joins such traces.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial_traces: bool,
    /// The transaction (an ingest, a compaction) that wrote this block: while it is set,
    /// the block is visible only once that transaction's commit record exists in the
    /// store, so a whole ingest or compaction becomes visible in one step. `None` for
    /// blocks visible by themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
    /// The block of another kind this one was converted from (`traceql convert`), so
    /// that converting it again replaces this block instead of adding a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_block: Option<String>,
    /// For each write-ahead log of `traceql serve` whose records fed this block (by the
    /// log's id): the last of its records whose spans this block or a block committed
    /// before it holds. A server that restarts replays only the records past the
    /// highest mark its store's blocks carry, so no span is stored twice; a compaction
    /// carries its blocks' marks on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wal_marks: BTreeMap<String, u64>,
}

/// The bucket of [`BlockMeta::trace_durations`] a trace duration (nanoseconds) counts
/// in: 0 for 0, `i` for durations in `[2^(i-1), 2^i)`.
pub fn duration_bucket(duration_nano: u64) -> usize {
    (u64::BITS - duration_nano.leading_zeros()) as usize
}

/// The durations bucket `i` of [`BlockMeta::trace_durations`] counts: `[low, high)`,
/// with `high` `None` for the last bucket (no upper bound).
pub fn duration_bucket_bounds(i: usize) -> (u64, Option<u64>) {
    let low = if i == 0 { 0 } else { 1u64 << (i - 1).min(63) };
    let high = (i < 64).then(|| 1u64 << i);
    (low, high)
}

/// The histogram of [`BlockMeta::trace_durations`] for traces of these durations.
pub fn duration_histogram(durations: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut counts = Vec::new();
    for d in durations {
        let i = duration_bucket(d);
        if counts.len() <= i {
            counts.resize(i + 1, 0);
        }
        counts[i] += 1;
    }
    counts
}

/// Dictionaries of columns with more distinct values than this are not recorded.
pub const MAX_DICTIONARY_VALUES: usize = 256;

/// Fallback keys are not recorded for blocks with more distinct keys than this.
pub const MAX_FALLBACK_KEYS: usize = 10_000;

impl BlockMeta {
    /// Checks that this is a traceql block of a version this code reads:
    /// [`FormatError::Unsupported`] names the format or version otherwise.
    pub fn check_readable(&self) -> Result<(), FormatError> {
        if self.format != super::FORMAT_NAME {
            return Err(FormatError::Unsupported(format!(
                "block {} has format `{}`, which this version does not read",
                self.id, self.format
            )));
        }
        if self.version > FORMAT_VERSION {
            return Err(FormatError::Unsupported(format!(
                "block {} has format version {}; this version reads up to {FORMAT_VERSION}",
                self.id, self.version
            )));
        }
        Ok(())
    }

    /// A bound above every trace duration in this block (exclusive), if recorded.
    pub fn trace_duration_bound(&self) -> Option<u64> {
        if self.trace_durations.is_empty() {
            return None;
        }
        Some(
            duration_bucket_bounds(self.trace_durations.len() - 1)
                .1
                .unwrap_or(u64::MAX),
        )
    }

    /// What the planner may know about this block.
    pub fn facts(&self) -> Facts {
        Facts {
            missing_child_counts: self.version < CHILD_COUNT_VERSION,
            typed: self
                .typed_columns
                .iter()
                .filter_map(TypedColumn::attribute)
                .collect(),
            fallback: self.fallback_keys.as_ref().map(|by_scope| {
                by_scope
                    .iter()
                    .filter_map(|(s, keys)| Some((scope_of_prefix(s)?, keys)))
                    .flat_map(|(s, keys)| keys.iter().map(move |k| (s, k.clone())))
                    .collect()
            }),
            dictionaries: self
                .dictionaries
                .iter()
                .map(|(column, values)| (column.clone(), values.iter().cloned().collect()))
                .collect(),
        }
    }
}

//! `meta.json`: what a block holds. Written after `data.parquet`; a block without it is
//! invisible, so a crashed write never shows half a block.

use serde::{Deserialize, Serialize};

use crate::model::ValueType;

/// The block format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The `format` field of every `meta.json`.
pub const FORMAT_NAME: &str = "traceql-block";

/// A typed attribute column: which attribute of which scope and type it holds.
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

/// The contents of `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Always [`FORMAT_NAME`].
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
}

//! Search results shaped like Tempo's `/api/search` JSON.

use serde::Serialize;
use traceql_format::value::Value;

/// The answer to a search: matching traces, first in the search's order, and what the
/// search read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    /// Matching traces, first in the search's order (newest start first by default;
    /// ties by trace id).
    pub traces: Vec<TraceResult>,
    /// What the search read.
    pub metrics: SearchMetrics,
}

/// One matching trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceResult {
    /// Trace id, hex without leading zeros.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// `service.name` of the root span's resource.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub root_service_name: String,
    /// Name of the root span.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub root_trace_name: String,
    /// Earliest span start, unix nanoseconds (a string in JSON).
    #[serde(with = "as_string")]
    pub start_time_unix_nano: u64,
    /// Trace duration in milliseconds.
    pub duration_ms: u64,
    /// The matching spansets.
    pub span_sets: Vec<SpanSet>,
}

/// One spanset of a trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanSet {
    /// The first spans of the spanset (at most `spss`).
    pub spans: Vec<SpanResult>,
    /// How many spans the spanset has.
    pub matched: u64,
    /// Spanset attributes: `by()` values and aggregate results.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
}

/// One span of a spanset.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanResult {
    /// Span id, 16 hex digits.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// Span name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Start, unix nanoseconds (a string in JSON).
    #[serde(with = "as_string")]
    pub start_time_unix_nano: u64,
    /// Duration in nanoseconds (a string in JSON).
    #[serde(with = "as_string")]
    pub duration_nanos: u64,
    /// The attributes the query touched or selected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
}

/// A key and a value, written as OTLP/JSON (`{"key":"http.method","value":{"stringValue":"GET"}}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribute {
    /// The name.
    pub key: String,
    /// The value, written as an OTLP/JSON `AnyValue`.
    pub value: Value,
}

/// What a search read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchMetrics {
    /// Traces with at least one span that passed a filter.
    pub inspected_traces: u64,
    /// Bytes read from block files (a string in JSON).
    #[serde(with = "as_string")]
    pub inspected_bytes: u64,
    /// Spans read (a string in JSON).
    #[serde(with = "as_string")]
    pub inspected_spans: u64,
    /// Blocks in the searched range.
    pub total_blocks: u64,
    /// Size of those blocks (a string in JSON).
    #[serde(with = "as_string")]
    pub total_block_bytes: u64,
}

mod as_string {
    pub fn serialize<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(itoa::Buffer::new().format(*v))
    }
}

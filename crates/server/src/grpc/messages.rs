//! The protobuf messages of Tempo's `tempopb.StreamingQuerier` service that traceql
//! answers, with Tempo's field numbers (`pkg/tempopb/tempo.proto`, Apache-2.0). Fields
//! traceql has no use for (Tempo's internal block and sharding parameters) are left
//! out; a decoder skips them on the wire. Attributes and labels are OTLP's `KeyValue`,
//! which Tempo's `tempopb.common.v1.KeyValue` copies field for field.

use opentelemetry_proto::tonic::common::v1::KeyValue;

/// `tempopb.SearchRequest`: a TraceQL search (`query`), or Tempo's legacy search
/// (`tags`, `min_duration_ms`, `max_duration_ms`); times in unix seconds, 0 for none.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchRequest {
    /// Legacy search: attribute values to match.
    #[prost(map = "string, string", tag = "1")]
    pub tags: std::collections::HashMap<String, String>,
    /// Legacy search: the shortest trace, in milliseconds.
    #[prost(uint32, tag = "2")]
    pub min_duration_ms: u32,
    /// Legacy search: the longest trace, in milliseconds.
    #[prost(uint32, tag = "3")]
    pub max_duration_ms: u32,
    /// At most this many traces (0: the default).
    #[prost(uint32, tag = "4")]
    pub limit: u32,
    /// Start of the range, unix seconds.
    #[prost(uint32, tag = "5")]
    pub start: u32,
    /// End of the range, unix seconds.
    #[prost(uint32, tag = "6")]
    pub end: u32,
    /// The TraceQL query.
    #[prost(string, tag = "8")]
    pub query: String,
    /// At most this many spans per spanset (0: the default).
    #[prost(uint32, tag = "9")]
    pub spans_per_span_set: u32,
}

/// `tempopb.SearchResponse`: traces found, and what the search read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchResponse {
    /// The traces.
    #[prost(message, repeated, tag = "1")]
    pub traces: Vec<TraceSearchMetadata>,
    /// What the search read, and its progress.
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<SearchMetrics>,
}

/// `tempopb.TraceSearchMetadata`: one trace found.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TraceSearchMetadata {
    /// Trace id, hex without leading zeros.
    #[prost(string, tag = "1")]
    pub trace_id: String,
    /// `service.name` of the root span's resource.
    #[prost(string, tag = "2")]
    pub root_service_name: String,
    /// Name of the root span.
    #[prost(string, tag = "3")]
    pub root_trace_name: String,
    /// Earliest span start, unix nanoseconds.
    #[prost(uint64, tag = "4")]
    pub start_time_unix_nano: u64,
    /// Duration in milliseconds.
    #[prost(uint32, tag = "5")]
    pub duration_ms: u32,
    /// The first spanset (Tempo's older field).
    #[prost(message, optional, tag = "6")]
    pub span_set: Option<SpanSet>,
    /// The spansets.
    #[prost(message, repeated, tag = "7")]
    pub span_sets: Vec<SpanSet>,
}

/// `tempopb.SpanSet`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpanSet {
    /// The first spans.
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
    /// How many spans the spanset has.
    #[prost(uint32, tag = "2")]
    pub matched: u32,
    /// `by()` values and aggregates.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

/// `tempopb.Span`: a span shown in a spanset.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// Span id, 16 hex digits.
    #[prost(string, tag = "1")]
    pub span_id: String,
    /// Span name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Start, unix nanoseconds.
    #[prost(uint64, tag = "3")]
    pub start_time_unix_nano: u64,
    /// Duration in nanoseconds.
    #[prost(uint64, tag = "4")]
    pub duration_nanos: u64,
    /// The attributes the query touched or selected.
    #[prost(message, repeated, tag = "5")]
    pub attributes: Vec<KeyValue>,
}

/// `tempopb.SearchMetrics`: what a query read, and how far it has gone.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct SearchMetrics {
    /// Traces with a span that passed a filter.
    #[prost(uint32, tag = "1")]
    pub inspected_traces: u32,
    /// Bytes read.
    #[prost(uint64, tag = "2")]
    pub inspected_bytes: u64,
    /// Blocks in the range.
    #[prost(uint32, tag = "3")]
    pub total_blocks: u32,
    /// Parts of the query done (Grafana shows `completed_jobs / total_jobs`).
    #[prost(uint32, tag = "4")]
    pub completed_jobs: u32,
    /// Parts of the query known so far.
    #[prost(uint32, tag = "5")]
    pub total_jobs: u32,
    /// Bytes of the blocks in the range.
    #[prost(uint64, tag = "6")]
    pub total_block_bytes: u64,
    /// Spans read.
    #[prost(uint64, tag = "7")]
    pub inspected_spans: u64,
}

/// `tempopb.QueryRangeRequest`: a TraceQL metrics query over time; unix nanoseconds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryRangeRequest {
    /// The TraceQL metrics query.
    #[prost(string, tag = "1")]
    pub query: String,
    /// Start, unix nanoseconds (0: the store's first span).
    #[prost(uint64, tag = "2")]
    pub start: u64,
    /// End, unix nanoseconds (0: the store's last span).
    #[prost(uint64, tag = "3")]
    pub end: u64,
    /// Bucket width in nanoseconds (0: Tempo's default for the range).
    #[prost(uint64, tag = "4")]
    pub step: u64,
    /// Exemplars wanted per series (traceql sends none).
    #[prost(uint32, tag = "16")]
    pub exemplars: u32,
}

/// `tempopb.PartialStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PartialStatus {
    /// The answer is whole.
    Complete = 0,
    /// Part of the answer.
    Partial = 1,
}

/// `tempopb.QueryRangeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryRangeResponse {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub series: Vec<TimeSeries>,
    /// What the query read.
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<SearchMetrics>,
    /// Whether the answer is whole.
    #[prost(enumeration = "PartialStatus", tag = "3")]
    pub status: i32,
    /// Why it is partial.
    #[prost(string, tag = "4")]
    pub message: String,
}

/// `tempopb.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Its labels, typed.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<KeyValue>,
    /// Its points, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `tempopb.Sample`: one point of a series.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// The bucket's time, unix milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp_ms: i64,
}

/// `tempopb.QueryInstantRequest`: a TraceQL metrics query for one value per series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryInstantRequest {
    /// The TraceQL metrics query.
    #[prost(string, tag = "1")]
    pub query: String,
    /// Start, unix nanoseconds (0: the store's first span).
    #[prost(uint64, tag = "2")]
    pub start: u64,
    /// End, unix nanoseconds (0: the store's last span).
    #[prost(uint64, tag = "3")]
    pub end: u64,
}

/// `tempopb.QueryInstantResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueryInstantResponse {
    /// One value per series.
    #[prost(message, repeated, tag = "1")]
    pub series: Vec<InstantSeries>,
    /// What the query read.
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<SearchMetrics>,
    /// Whether the answer is whole.
    #[prost(enumeration = "PartialStatus", tag = "3")]
    pub status: i32,
    /// Why it is partial.
    #[prost(string, tag = "4")]
    pub message: String,
}

/// `tempopb.InstantSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstantSeries {
    /// Its labels, typed.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<KeyValue>,
    /// Its value.
    #[prost(double, tag = "2")]
    pub value: f64,
}

/// `tempopb.SearchTagsRequest`: tag names, of one scope or all.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagsRequest {
    /// The scope (`span`, `resource`, …, `intrinsic`); empty or `all` for every one.
    #[prost(string, tag = "1")]
    pub scope: String,
    /// Start of the range, unix seconds.
    #[prost(uint32, tag = "3")]
    pub start: u32,
    /// End of the range, unix seconds.
    #[prost(uint32, tag = "4")]
    pub end: u32,
}

/// `tempopb.SearchTagsResponse`: every tag name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagsResponse {
    /// The names.
    #[prost(string, repeated, tag = "1")]
    pub tag_names: Vec<String>,
    /// What was read.
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<MetadataMetrics>,
}

/// `tempopb.SearchTagsV2Response`: tag names by scope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagsV2Response {
    /// The scopes.
    #[prost(message, repeated, tag = "1")]
    pub scopes: Vec<SearchTagsV2Scope>,
    /// What was read.
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<MetadataMetrics>,
}

/// `tempopb.SearchTagsV2Scope`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagsV2Scope {
    /// The scope.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its tag names.
    #[prost(string, repeated, tag = "2")]
    pub tags: Vec<String>,
}

/// `tempopb.SearchTagValuesRequest`: the values of a tag among the spans of `query`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagValuesRequest {
    /// The tag (`resource.service.name`, `.http.method`, `status`, …).
    #[prost(string, tag = "1")]
    pub tag_name: String,
    /// A TraceQL filter the spans pass (empty: every span).
    #[prost(string, tag = "2")]
    pub query: String,
    /// Start of the range, unix seconds.
    #[prost(uint32, tag = "4")]
    pub start: u32,
    /// End of the range, unix seconds.
    #[prost(uint32, tag = "5")]
    pub end: u32,
    /// At most this many values (0: the default).
    #[prost(uint32, tag = "6")]
    pub max_tag_values: u32,
}

/// `tempopb.SearchTagValuesResponse`: values as text.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagValuesResponse {
    /// The values.
    #[prost(string, repeated, tag = "1")]
    pub tag_values: Vec<String>,
    /// What was read.
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<MetadataMetrics>,
}

/// `tempopb.TagValue`: a value and its type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TagValue {
    /// `string`, `int`, `float`, `bool`, `keyword` or `duration`.
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// The value as text.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `tempopb.SearchTagValuesV2Response`: typed values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SearchTagValuesV2Response {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub tag_values: Vec<TagValue>,
    /// What was read.
    #[prost(message, optional, tag = "2")]
    pub metrics: Option<MetadataMetrics>,
}

/// `tempopb.MetadataMetrics`: what a tag search read.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct MetadataMetrics {
    /// Bytes read.
    #[prost(uint64, tag = "1")]
    pub inspected_bytes: u64,
    /// Parts of the search.
    #[prost(uint32, tag = "2")]
    pub total_jobs: u32,
    /// Parts done.
    #[prost(uint32, tag = "3")]
    pub completed_jobs: u32,
    /// Blocks in the range.
    #[prost(uint32, tag = "4")]
    pub total_blocks: u32,
    /// Bytes of those blocks.
    #[prost(uint64, tag = "5")]
    pub total_block_bytes: u64,
}

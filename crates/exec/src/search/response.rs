//! Search results shaped like Tempo's `/api/search` JSON, and their assembly from the
//! rows of a search plan.

use rustc_hash::FxHashMap as HashMap;

use datafusion::arrow::array::{
    Array, FixedSizeBinaryArray, Float64Array, Int32Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value as Json, json};
use traceql_format::display::go_duration;
use traceql_format::ids::{hex, trace_id_hex};
use traceql_format::schema::columns as c;
use traceql_planner::lower::{AttributeKind, ResultAttribute, SPANSET, SearchPlan};

use crate::engine::Order;

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

/// A key and an OTLP/JSON `AnyValue`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribute {
    /// The name.
    pub key: String,
    /// The value, e.g. `{"stringValue": "GET"}`.
    pub value: AnyValueJson,
}

/// An OTLP/JSON `AnyValue` (`{"stringValue": "GET"}`, `{"intValue": "200"}`, …), kept
/// as its JSON text: results are written out as they came, without building a JSON
/// tree per value.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct AnyValueJson(Box<RawValue>);

impl AnyValueJson {
    /// The value from its JSON text; an error if the text is not JSON.
    pub fn from_text(text: String) -> Result<Self> {
        RawValue::from_string(text)
            .map(AnyValueJson)
            .map_err(|e| DataFusionError::Internal(format!("attribute value is not JSON: {e}")))
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// The value as a JSON tree.
    pub fn to_json(&self) -> Json {
        serde_json::from_str(self.0.get()).unwrap_or(Json::Null)
    }
}

impl PartialEq for AnyValueJson {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
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

/// A span id as a sort key (ids of other than 8 bytes sort by their first 8).
fn span_key(id: &[u8]) -> [u8; 8] {
    let mut key = [0; 8];
    let n = id.len().min(8);
    key[..n].copy_from_slice(&id[..n]);
    key
}

/// Collects result rows into traces, keeping the first `limit` traces in `order`.
pub struct Assembler {
    order: Order,
    spanset_attributes: Vec<ResultAttribute>,
    span_attributes: Vec<ResultAttribute>,
    limit: usize,
    spss: usize,
    traces: HashMap<[u8; 16], TraceAcc>,
}

struct TraceAcc {
    root_service: String,
    root_name: String,
    start: u64,
    end: u64,
    spansets: Vec<(i32, SpanSetAcc)>,
}

impl TraceAcc {
    /// The trace's rank in `order`: lower first.
    fn rank(&self, order: Order) -> u64 {
        order.rank(self.start, self.end - self.start)
    }
}

struct SpanSetAcc {
    /// The spans shown, with their (start, span id) order.
    spans: Vec<((u64, [u8; 8]), SpanResult)>,
    matched: u64,
    attributes: Vec<Attribute>,
}

fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    traceql_format::arrays::column(batch, name)
        .map_err(|e| DataFusionError::Internal(format!("search result: {e}")))
}

fn utf8(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| DataFusionError::Internal(format!("search result lacks column `{name}`")))?;
    let array = cast(array, &DataType::Utf8)?;
    Ok(array
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::from(Vec::<Option<&str>>::new())))
}

fn attribute_value(
    attr: &ResultAttribute,
    batch: &RecordBatch,
    row: usize,
) -> Result<Option<AnyValueJson>> {
    let text = match attr.kind {
        AttributeKind::Json => {
            let values = col::<StringArray>(batch, &attr.column)?;
            if values.is_null(row) {
                return Ok(None);
            }
            values.value(row).to_string()
        }
        kind => {
            let values = col::<Float64Array>(batch, &attr.column)?;
            if values.is_null(row) {
                return Ok(None);
            }
            let v = values.value(row);
            match kind {
                AttributeKind::Int => format!(r#"{{"intValue":"{}"}}"#, v as i64),
                AttributeKind::Duration => {
                    json!({ "stringValue": go_duration(v.round() as i64) }).to_string()
                }
                _ => json!({ "doubleValue": v }).to_string(),
            }
        }
    };
    AnyValueJson::from_text(text).map(Some)
}

/// The values of `attrs` on `row` (those that are not nil).
fn attributes(
    attrs: &[ResultAttribute],
    batch: &RecordBatch,
    row: usize,
) -> Result<Vec<Attribute>> {
    let mut out = Vec::new();
    for attr in attrs {
        if let Some(value) = attribute_value(attr, batch, row)? {
            out.push(Attribute {
                key: attr.name.clone(),
                value,
            });
        }
    }
    Ok(out)
}

impl Assembler {
    /// An assembler for the rows of `plan`.
    pub fn new(plan: &SearchPlan, limit: usize, spss: usize, order: Order) -> Self {
        Assembler {
            order,
            spanset_attributes: plan.spanset_attributes.clone(),
            span_attributes: plan.span_attributes.clone(),
            limit,
            spss,
            traces: HashMap::default(),
        }
    }

    /// Adds a batch of result rows.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let trace_id = col::<FixedSizeBinaryArray>(batch, c::TRACE_ID)?;
        let span_id = col::<FixedSizeBinaryArray>(batch, c::SPAN_ID)?;
        let name = utf8(batch, c::NAME)?;
        let start = col::<UInt64Array>(batch, c::START_UNIX_NANO)?;
        let duration = col::<UInt64Array>(batch, c::DURATION_NANO)?;
        let root_service = utf8(batch, c::TRACE_ROOT_SERVICE)?;
        let root_name = utf8(batch, c::TRACE_ROOT_NAME)?;
        let trace_start = col::<UInt64Array>(batch, c::TRACE_START_UNIX_NANO)?;
        let trace_duration = col::<UInt64Array>(batch, c::TRACE_DURATION_NANO)?;
        let spanset = col::<Int32Array>(batch, SPANSET)?;
        for row in 0..batch.num_rows() {
            let id: [u8; 16] = trace_id.value(row).try_into().map_err(|_| {
                DataFusionError::Internal("search result: a trace id of other than 16 bytes".into())
            })?;
            let acc = self.traces.entry(id).or_insert_with(|| TraceAcc {
                root_service: String::new(),
                root_name: String::new(),
                start: u64::MAX,
                end: 0,
                spansets: Vec::new(),
            });
            if acc.root_service.is_empty() && root_service.is_valid(row) {
                acc.root_service = root_service.value(row).to_string();
            }
            if acc.root_name.is_empty() && root_name.is_valid(row) {
                acc.root_name = root_name.value(row).to_string();
            }
            let ts = trace_start.value(row);
            acc.start = acc.start.min(ts);
            acc.end = acc.end.max(ts + trace_duration.value(row));
            let id = spanset.value(row);
            let index = match acc.spansets.iter().position(|(i, _)| *i == id) {
                Some(i) => i,
                None => {
                    let attributes = attributes(&self.spanset_attributes, batch, row)?;
                    acc.spansets.push((
                        id,
                        SpanSetAcc {
                            spans: Vec::new(),
                            matched: 0,
                            attributes,
                        },
                    ));
                    acc.spansets.len() - 1
                }
            };
            let set = &mut acc.spansets[index].1;
            set.matched += 1;
            // The spans shown are the spanset's first `spss` by start time (then span id),
            // whatever order the rows arrive in.
            let key = (start.value(row), span_key(span_id.value(row)));
            let replace = if set.spans.len() < self.spss {
                None
            } else {
                match set.spans.iter().enumerate().max_by_key(|(_, (k, _))| *k) {
                    Some((i, (latest, _))) if key < *latest => Some(i),
                    _ => continue,
                }
            };
            let attributes = attributes(&self.span_attributes, batch, row)?;
            let span = SpanResult {
                span_id: hex(span_id.value(row)),
                name: if name.is_valid(row) {
                    name.value(row).to_string()
                } else {
                    String::new()
                },
                start_time_unix_nano: start.value(row),
                duration_nanos: duration.value(row),
                attributes,
            };
            match replace {
                Some(i) => set.spans[i] = (key, span),
                None => set.spans.push((key, span)),
            }
        }
        self.prune();
        Ok(())
    }

    /// Keeps the memory bounded: once many more traces than `limit` are held, only the
    /// first `limit` in order are kept.
    fn prune(&mut self) {
        if self.traces.len() <= self.limit.saturating_mul(4).max(4096) {
            return;
        }
        let mut ranks: Vec<(u64, [u8; 16])> = self
            .traces
            .iter()
            .map(|(id, t)| (t.rank(self.order), *id))
            .collect();
        ranks.sort_unstable();
        for (_, id) in ranks.into_iter().skip(self.limit) {
            self.traces.remove(&id);
        }
    }

    /// Traces seen so far (before the limit).
    pub fn trace_count(&self) -> usize {
        self.traces.len()
    }

    /// The first `limit` traces in order (ties by trace id).
    pub fn finish(self) -> Vec<TraceResult> {
        let order = self.order;
        let mut traces: Vec<(u64, [u8; 16], TraceAcc)> = self
            .traces
            .into_iter()
            .map(|(id, t)| (t.rank(order), id, t))
            .collect();
        traces.sort_unstable_by_key(|(rank, id, _)| (*rank, *id));
        traces.truncate(self.limit);
        traces
            .into_iter()
            .map(|(_, id, t)| TraceResult {
                trace_id: trace_id_hex(&id),
                root_service_name: t.root_service,
                root_trace_name: t.root_name,
                start_time_unix_nano: t.start,
                duration_ms: (t.end - t.start) / 1_000_000,
                span_sets: {
                    // Spansets in the order of their earliest span, whatever order the
                    // rows arrived in (then by their index, for spansets shown without spans).
                    let mut sets = t.spansets;
                    sets.sort_by_cached_key(|(id, s)| (s.spans.iter().map(|(k, _)| *k).min(), *id));
                    sets
                }
                .into_iter()
                .map(|(_, mut s)| SpanSet {
                    spans: {
                        s.spans.sort_unstable_by_key(|(key, _)| *key);
                        s.spans.into_iter().map(|(_, span)| span).collect()
                    },
                    matched: s.matched,
                    attributes: s.attributes,
                })
                .collect(),
            })
            .collect()
    }
}

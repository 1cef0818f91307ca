//! OTLP messages → arenas (and the span model); the span model → OTLP messages.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue as OtlpKeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status, span,
};

use super::wire::prost_value;
use traceql_format::arena::{
    ArenaAttribute, ArenaEvent, ArenaLink, ArenaResource, ArenaScope, ArenaSpan, ArenaValue, Slot,
    SpanArena,
};
use traceql_format::block::span_rows::SpanRows;
use traceql_format::ids::{SpanId, TraceId};
use traceql_format::model::{Resource, Scope, Span};
use traceql_format::value::{KeyValue, Value};

/// The spans of `request` as the span model; the first invalid span is an error naming
/// its place (`resourceSpans[0].scopeSpans[1].spans[2]: …`).
pub fn spans_from_request(request: &ExportTraceServiceRequest) -> Result<Vec<Span>, String> {
    let mut arena = SpanArena::default();
    let mut first_invalid = None;
    arena_from_request(request, &mut arena, &mut |message| {
        first_invalid.get_or_insert(message);
    });
    match first_invalid {
        Some(message) => Err(message),
        None => Ok(spans_of(&arena)),
    }
}

/// The spans of `arena`, in its order, as the span model.
pub fn spans_of(arena: &SpanArena) -> Vec<Span> {
    let mut rows = SpanRows::default();
    arena.push_all(&mut rows);
    rows.to_traces().pop().unwrap_or_default()
}

/// Appends the spans of the decoded `request` to `arena` (what
/// [`super::wire::decode_request`] does from its bytes): a span that is not valid OTLP
/// is left out and `invalid` told why, with its place.
pub fn arena_from_request(
    request: &ExportTraceServiceRequest,
    arena: &mut SpanArena,
    invalid: &mut dyn FnMut(String),
) {
    for (r, rs) in request.resource_spans.iter().enumerate() {
        let resource = rs.resource.as_ref();
        let attributes = key_values(resource.map_or(&[], |r| &r.attributes), arena);
        let schema_url = arena.push_str(&rs.schema_url);
        arena.resources.push(ArenaResource {
            attributes,
            dropped_attributes_count: resource.map_or(0, |r| r.dropped_attributes_count),
            schema_url,
        });
        let resource = arena.resources.len() - 1;
        for (s, ss) in rs.scope_spans.iter().enumerate() {
            let scope = ss.scope.as_ref();
            let name = arena.push_str(scope.map_or("", |c| &c.name));
            let version = arena.push_str(scope.map_or("", |c| &c.version));
            let attributes = key_values(scope.map_or(&[], |c| &c.attributes), arena);
            let schema_url = arena.push_str(&ss.schema_url);
            arena.scopes.push(ArenaScope {
                name,
                version,
                attributes,
                dropped_attributes_count: scope.map_or(0, |c| c.dropped_attributes_count),
                schema_url,
            });
            let scope = arena.scopes.len() - 1;
            for (i, span) in ss.spans.iter().enumerate() {
                let mark = arena.mark();
                if let Err(message) = span_from(span, resource, scope, arena) {
                    arena.truncate(mark);
                    invalid(format!(
                        "resourceSpans[{r}].scopeSpans[{s}].spans[{i}]: {message}"
                    ));
                }
            }
        }
    }
}

/// `bytes` as a trace id: 16 bytes, not all zero.
pub(super) fn valid_trace_id(bytes: &[u8], what: &str) -> Result<TraceId, String> {
    let id: TraceId = bytes
        .try_into()
        .map_err(|_| format!("{what} must be 16 bytes, got {}", bytes.len()))?;
    if id == [0; 16] {
        return Err(format!("{what} must not be all zeroes"));
    }
    Ok(id)
}

/// `bytes` as a span id: 8 bytes, not all zero.
pub(super) fn valid_span_id(bytes: &[u8], what: &str) -> Result<SpanId, String> {
    let id: SpanId = bytes
        .try_into()
        .map_err(|_| format!("{what} must be 8 bytes, got {}", bytes.len()))?;
    if id == [0; 8] {
        return Err(format!("{what} must not be all zeroes"));
    }
    Ok(id)
}

/// A span's raw fields still to check: its ids, kind and status code as read, and its
/// links with their ids as read.
pub(super) struct Unchecked<'a, L> {
    /// Trace id bytes.
    pub trace_id: &'a [u8],
    /// Span id bytes.
    pub span_id: &'a [u8],
    /// Parent span id bytes (empty for a root).
    pub parent: &'a [u8],
    /// Span kind.
    pub kind: i32,
    /// Status code.
    pub status_code: i32,
    /// Links, each with its trace and span id bytes.
    pub links: L,
}

/// Checks a span decoded from bytes (its other fields already in `span`) and appends
/// its links and it to `arena`. The first fault, named as every decoder names it and
/// found in the order every decoder checks, is an error; the caller then takes back
/// what the span appended (to its [`SpanArena::mark`]).
pub(super) fn push_checked<'a>(
    mut span: ArenaSpan,
    raw: Unchecked<'a, impl IntoIterator<Item = (ArenaLink, &'a [u8], &'a [u8])>>,
    arena: &mut SpanArena,
) -> Result<(), String> {
    span.parent_span_id = if raw.parent.is_empty() {
        None
    } else {
        Some(valid_span_id(raw.parent, "parent span id")?)
    };
    span.kind = valid_kind(raw.kind)?;
    span.status_code = valid_status(raw.status_code)?;
    let from = arena.links.len();
    for (link, trace_id, span_id) in raw.links {
        arena.links.push(ArenaLink {
            trace_id: valid_trace_id(trace_id, "link trace id")?,
            span_id: valid_span_id(span_id, "link span id")?,
            ..link
        });
    }
    span.links = Slot {
        start: from,
        end: arena.links.len(),
    };
    span.trace_id = valid_trace_id(raw.trace_id, "trace id")?;
    span.span_id = valid_span_id(raw.span_id, "span id")?;
    arena.spans.push(span);
    Ok(())
}

/// An OTLP span kind (0–5).
pub(super) fn valid_kind(kind: i32) -> Result<i8, String> {
    i8::try_from(kind)
        .ok()
        .filter(|k| (0..=5).contains(k))
        .ok_or_else(|| format!("span kind {kind} is not an OTLP kind (0–5)"))
}

/// An OTLP status code (0–2).
pub(super) fn valid_status(code: i32) -> Result<i8, String> {
    i8::try_from(code)
        .ok()
        .filter(|c| (0..=2).contains(c))
        .ok_or_else(|| format!("status code {code} is not an OTLP status (0–2)"))
}

/// The text kept for a value TraceQL cannot query: its OTLP/JSON, `{}` when absent.
pub(super) fn opaque_value(any: Option<&AnyValue>) -> String {
    any.and_then(|any| serde_json::to_string(any).ok())
        .unwrap_or_else(|| "{}".to_string())
}

fn span_from(
    s: &OtlpSpan,
    resource: usize,
    scope: usize,
    arena: &mut SpanArena,
) -> Result<(), String> {
    let parent_span_id = if s.parent_span_id.is_empty() {
        None
    } else {
        Some(valid_span_id(&s.parent_span_id, "parent span id")?)
    };
    let status = s.status.clone().unwrap_or_default();
    let kind = valid_kind(s.kind)?;
    let status_code = valid_status(status.code)?;
    let attributes = key_values(&s.attributes, arena);
    let mut events = Vec::with_capacity(s.events.len());
    for e in &s.events {
        let name = arena.push_str(&e.name);
        events.push(ArenaEvent {
            time_unix_nano: e.time_unix_nano,
            name,
            attributes: key_values(&e.attributes, arena),
            dropped_attributes_count: e.dropped_attributes_count,
        });
    }
    let mut links = Vec::with_capacity(s.links.len());
    for l in &s.links {
        let trace_state = arena.push_str(&l.trace_state);
        links.push(ArenaLink {
            trace_id: valid_trace_id(&l.trace_id, "link trace id")?,
            span_id: valid_span_id(&l.span_id, "link span id")?,
            trace_state,
            flags: l.flags,
            attributes: key_values(&l.attributes, arena),
            dropped_attributes_count: l.dropped_attributes_count,
        });
    }
    let span = ArenaSpan {
        trace_id: valid_trace_id(&s.trace_id, "trace id")?,
        span_id: valid_span_id(&s.span_id, "span id")?,
        parent_span_id,
        trace_state: arena.push_str(&s.trace_state),
        flags: s.flags,
        name: arena.push_str(&s.name),
        kind,
        start_unix_nano: s.start_time_unix_nano,
        end_unix_nano: s.end_time_unix_nano,
        attributes,
        dropped_attributes_count: s.dropped_attributes_count,
        events: Slot::append(&mut arena.events, events),
        dropped_events_count: s.dropped_events_count,
        links: Slot::append(&mut arena.links, links),
        dropped_links_count: s.dropped_links_count,
        status_code,
        status_message: arena.push_str(&status.message),
        resource,
        scope,
    };
    arena.spans.push(span);
    Ok(())
}

fn key_values(kvs: &[OtlpKeyValue], arena: &mut SpanArena) -> Slot {
    let values: Vec<ArenaAttribute> = kvs
        .iter()
        .map(|kv| {
            let key = arena.push_str(&kv.key);
            let value = match &kv.value {
                Some(any) => prost_value(any, arena),
                None => ArenaValue::Opaque(arena.push_str(&opaque_value(None))),
            };
            ArenaAttribute { key, value }
        })
        .collect();
    Slot::append(&mut arena.attributes, values)
}

/// `v` as an OTLP `AnyValue`.
pub fn any_value(v: &Value) -> AnyValue {
    use any_value::Value as V;
    let array = |values: Vec<V>| {
        V::ArrayValue(ArrayValue {
            values: values
                .into_iter()
                .map(|v| AnyValue { value: Some(v) })
                .collect(),
        })
    };
    let value = match v {
        Value::Str(s) => V::StringValue(s.clone()),
        Value::Int(i) => V::IntValue(*i),
        Value::Float(f) => V::DoubleValue(*f),
        Value::Bool(b) => V::BoolValue(*b),
        Value::StrArray(a) => array(a.iter().cloned().map(V::StringValue).collect()),
        Value::IntArray(a) => array(a.iter().copied().map(V::IntValue).collect()),
        Value::FloatArray(a) => array(a.iter().copied().map(V::DoubleValue).collect()),
        Value::BoolArray(a) => array(a.iter().copied().map(V::BoolValue).collect()),
        Value::Opaque(json) => return serde_json::from_str(json).unwrap_or_default(),
    };
    AnyValue { value: Some(value) }
}

fn key_values_to(kvs: &[KeyValue]) -> Vec<OtlpKeyValue> {
    kvs.iter()
        .map(|kv| OtlpKeyValue {
            key: kv.key.clone(),
            value: Some(any_value(&kv.value)),
            ..Default::default()
        })
        .collect()
}

/// Spans → one OTLP request, grouping spans by resource and scope in order of appearance.
pub fn request_from_spans<'a>(
    spans: impl IntoIterator<Item = &'a Span>,
) -> ExportTraceServiceRequest {
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    let mut by_resource: HashMap<*const Resource, usize> = HashMap::new();
    let mut by_scope: HashMap<(*const Resource, *const Scope), (usize, usize)> = HashMap::new();
    for s in spans {
        let r_key = Arc::as_ptr(&s.resource);
        let r = *by_resource.entry(r_key).or_insert_with(|| {
            resource_spans.push(ResourceSpans {
                resource: Some(OtlpResource {
                    attributes: key_values_to(&s.resource.attributes),
                    dropped_attributes_count: s.resource.dropped_attributes_count,
                    entity_refs: Vec::new(),
                }),
                scope_spans: Vec::new(),
                schema_url: s.resource.schema_url.clone(),
            });
            resource_spans.len() - 1
        });
        let (r, i) = *by_scope
            .entry((r_key, Arc::as_ptr(&s.scope)))
            .or_insert_with(|| {
                let list = &mut resource_spans[r].scope_spans;
                list.push(ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: s.scope.name.clone(),
                        version: s.scope.version.clone(),
                        attributes: key_values_to(&s.scope.attributes),
                        dropped_attributes_count: s.scope.dropped_attributes_count,
                    }),
                    spans: Vec::new(),
                    schema_url: s.scope.schema_url.clone(),
                });
                (r, list.len() - 1)
            });
        resource_spans[r].scope_spans[i].spans.push(span_to(s));
    }
    ExportTraceServiceRequest { resource_spans }
}

fn span_to(s: &Span) -> OtlpSpan {
    OtlpSpan {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: s.trace_state.clone(),
        parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        flags: s.flags,
        name: s.name.clone(),
        kind: i32::from(s.kind),
        start_time_unix_nano: s.start_unix_nano,
        end_time_unix_nano: s.end_unix_nano,
        attributes: key_values_to(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .iter()
            .map(|e| span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name.clone(),
                attributes: key_values_to(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .iter()
            .map(|l| span::Link {
                trace_id: l.trace_id.to_vec(),
                span_id: l.span_id.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: key_values_to(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: s.dropped_links_count,
        status: Some(Status {
            message: s.status_message.clone(),
            code: i32::from(s.status_code),
        }),
    }
}

//! OTLP messages ⇄ the span model.

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

use traceql_format::ids::{SpanId, TraceId};
use traceql_format::model::{Event, Link, Resource, Scope, Span};
use traceql_format::value::{KeyValue, Value};

/// The spans of a request, each valid one or why it is invalid (with its place).
pub fn spans_from_request(request: ExportTraceServiceRequest) -> Vec<Result<Span, String>> {
    let mut out = Vec::new();
    for (r, rs) in request.resource_spans.into_iter().enumerate() {
        let resource = Arc::new(resource_from(
            rs.resource.unwrap_or_default(),
            rs.schema_url,
        ));
        for (s, ss) in rs.scope_spans.into_iter().enumerate() {
            let scope = Arc::new(scope_from(ss.scope.unwrap_or_default(), ss.schema_url));
            for (i, span) in ss.spans.into_iter().enumerate() {
                let place = format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]");
                out.push(span_from(span, &resource, &scope).map_err(|m| format!("{place}: {m}")));
            }
        }
    }
    out
}

fn resource_from(r: OtlpResource, schema_url: String) -> Resource {
    Resource {
        attributes: key_values(r.attributes),
        dropped_attributes_count: r.dropped_attributes_count,
        schema_url,
    }
}

fn scope_from(s: InstrumentationScope, schema_url: String) -> Scope {
    Scope {
        name: s.name,
        version: s.version,
        attributes: key_values(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        schema_url,
    }
}

fn trace_id(bytes: &[u8], what: &str) -> Result<TraceId, String> {
    let id: TraceId = bytes
        .try_into()
        .map_err(|_| format!("{what} must be 16 bytes, got {}", bytes.len()))?;
    if id == [0; 16] {
        return Err(format!("{what} must not be all zeroes"));
    }
    Ok(id)
}

fn span_id(bytes: &[u8], what: &str) -> Result<SpanId, String> {
    let id: SpanId = bytes
        .try_into()
        .map_err(|_| format!("{what} must be 8 bytes, got {}", bytes.len()))?;
    if id == [0; 8] {
        return Err(format!("{what} must not be all zeroes"));
    }
    Ok(id)
}

fn span_from(s: OtlpSpan, resource: &Arc<Resource>, scope: &Arc<Scope>) -> Result<Span, String> {
    let status = s.status.unwrap_or_default();
    let parent_span_id = if s.parent_span_id.is_empty() {
        None
    } else {
        Some(span_id(&s.parent_span_id, "parent span id")?)
    };
    let kind = i8::try_from(s.kind)
        .ok()
        .filter(|k| (0..=5).contains(k))
        .ok_or_else(|| format!("span kind {} is not an OTLP kind (0–5)", s.kind))?;
    let status_code = i8::try_from(status.code)
        .ok()
        .filter(|c| (0..=2).contains(c))
        .ok_or_else(|| format!("status code {} is not an OTLP status (0–2)", status.code))?;
    let links = s
        .links
        .into_iter()
        .map(|l| {
            Ok(Link {
                trace_id: trace_id(&l.trace_id, "link trace id")?,
                span_id: span_id(&l.span_id, "link span id")?,
                trace_state: l.trace_state,
                flags: l.flags,
                attributes: key_values(l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Span {
        trace_id: trace_id(&s.trace_id, "trace id")?,
        span_id: span_id(&s.span_id, "span id")?,
        parent_span_id,
        trace_state: s.trace_state,
        flags: s.flags,
        name: s.name,
        kind,
        start_unix_nano: s.start_time_unix_nano,
        end_unix_nano: s.end_time_unix_nano,
        attributes: key_values(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .into_iter()
            .map(|e| Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: key_values(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links,
        dropped_links_count: s.dropped_links_count,
        status_code,
        status_message: status.message,
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
    })
}

fn key_values(kvs: Vec<OtlpKeyValue>) -> Vec<KeyValue> {
    kvs.into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: value_from(kv.value),
        })
        .collect()
}

/// OTLP value → model value. Homogeneous non-empty arrays of scalars are typed arrays;
/// everything TraceQL cannot query is kept as OTLP/JSON text.
fn value_from(v: Option<AnyValue>) -> Value {
    use any_value::Value as V;
    let Some(any) = v else {
        return Value::Opaque("{}".to_string());
    };
    match &any.value {
        Some(V::StringValue(s)) => return Value::Str(s.clone()),
        Some(V::IntValue(i)) => return Value::Int(*i),
        Some(V::DoubleValue(f)) => return Value::Float(*f),
        Some(V::BoolValue(b)) => return Value::Bool(*b),
        Some(V::ArrayValue(a)) => {
            if let Some(typed) = typed_array(a) {
                return typed;
            }
        }
        _ => {}
    }
    Value::Opaque(serde_json::to_string(&any).unwrap_or_else(|_| "{}".to_string()))
}

fn typed_array(a: &ArrayValue) -> Option<Value> {
    use any_value::Value as V;
    let values: Vec<&V> = a
        .values
        .iter()
        .map(|v| v.value.as_ref())
        .collect::<Option<_>>()?;
    Some(match values.first()? {
        V::StringValue(_) => Value::StrArray(
            values
                .iter()
                .map(|v| match v {
                    V::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        V::IntValue(_) => Value::IntArray(
            values
                .iter()
                .map(|v| match v {
                    V::IntValue(i) => Some(*i),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        V::DoubleValue(_) => Value::FloatArray(
            values
                .iter()
                .map(|v| match v {
                    V::DoubleValue(f) => Some(*f),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        V::BoolValue(_) => Value::BoolArray(
            values
                .iter()
                .map(|v| match v {
                    V::BoolValue(b) => Some(*b),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
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

//! `GET /api/v2/traces/<id>` and `GET /api/traces/<id>`: one whole trace, as protobuf
//! (`Accept: application/protobuf`, what Grafana asks for) or as Tempo's JSON.
//!
//! A `Trace` message has the bytes of an OTLP `ExportTraceServiceRequest` (the same
//! field numbers), so v1's body is that request encoded. v2 wraps it in a
//! `TraceByIDResponse` (`trace = 1`, `metrics = 2`). An unknown id is, as in Tempo, a
//! 200 with an empty trace in v2 and a 404 with an empty body in v1.

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Map, Value, json};
use traceql_exec::otlp::request_from_spans;
use traceql_format::codes::{kind, status};
use traceql_format::ids::parse_trace_id;

use crate::error::ApiError;
use crate::params::{self, Params};
use crate::tenants::Tenant;

/// Which form of the endpoint was called.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// `GET /api/v2/traces/<id>`.
pub async fn trace_v2(
    tenant: Tenant,
    id: Path<String>,
    query: Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    trace(tenant, id, query, headers, Version::V2).await
}

/// `GET /api/traces/<id>`.
pub async fn trace_v1(
    tenant: Tenant,
    id: Path<String>,
    query: Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    trace(tenant, id, query, headers, Version::V1).await
}

async fn trace(
    Tenant(engine): Tenant,
    Path(id): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    version: Version,
) -> Result<Response, ApiError> {
    if let Some((i, c)) = id.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(format!(
            "trace IDs can only contain hex characters: invalid character '{c}' at position {}",
            i + 1
        )));
    }
    parse_trace_id(&id).map_err(ApiError::bad_request)?;
    // The range is checked as Tempo checks it; a lookup reads only blocks that may
    // hold the id, whatever their time.
    params::range(&params)?;
    let spans = engine.trace(&id).await?;
    let protobuf = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/protobuf"));
    if spans.is_empty() && version == Version::V1 {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let request = request_from_spans(&spans);
    if protobuf {
        let trace = request.encode_to_vec();
        let body = match version {
            Version::V1 => trace,
            Version::V2 => by_id_response(&trace),
        };
        return Ok(([(header::CONTENT_TYPE, "application/protobuf")], body).into_response());
    }
    let trace = tempo_json(&request)?;
    Ok(super::json(&match version {
        // v1's JSON names the resource spans `batches`, as Tempo's older API did.
        Version::V1 => {
            json!({ "batches": trace.get("resourceSpans").cloned().unwrap_or(json!([])) })
        }
        Version::V2 => json!({ "trace": trace, "metrics": {} }),
    }))
}

/// A `TraceByIDResponse` holding the encoded `Trace`: field 1 (the trace, present even
/// when empty, since Grafana reads it unchecked) and an empty field 2 (metrics).
fn by_id_response(trace: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(trace.len() + 12);
    out.push(0x0a);
    prost::encoding::encode_varint(trace.len() as u64, &mut out);
    out.extend_from_slice(trace);
    out.extend_from_slice(&[0x12, 0x00]);
    out
}

/// The trace as Tempo writes it in JSON (protobuf's JSON mapping): ids in base64, kind
/// and status code by name, 64-bit integers as strings, empty fields left out.
fn tempo_json(request: &ExportTraceServiceRequest) -> Result<Value, ApiError> {
    let value = serde_json::to_value(request).map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("the trace could not be written as JSON: {e}"),
    })?;
    Ok(protobuf_json(value, None))
}

/// `value` (field `field` of its parent) with protobuf's JSON conventions applied.
fn protobuf_json(value: Value, field: Option<&str>) -> Value {
    match value {
        Value::Object(map) if field != Some("value") => {
            let mut out = Map::new();
            for (key, v) in map {
                let v = match (key.as_str(), v) {
                    ("traceId" | "spanId" | "parentSpanId", Value::String(hex)) => {
                        Value::String(base64_of_hex(&hex))
                    }
                    ("kind", Value::Number(n)) => {
                        let code = n.as_i64().unwrap_or(0) as i8;
                        Value::String(format!("SPAN_KIND_{}", kind::name(code).to_uppercase()))
                    }
                    ("code", Value::Number(n)) if field == Some("status") => {
                        let code = n.as_i64().unwrap_or(0) as i8;
                        Value::String(format!("STATUS_CODE_{}", status::name(code).to_uppercase()))
                    }
                    (_, v) => protobuf_json(v, Some(&key)),
                };
                if !is_default(&v) {
                    out.insert(key, v);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| protobuf_json(v, field)).collect())
        }
        other => other,
    }
}

/// Whether protobuf's JSON mapping leaves `v` out (a field at its default).
fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => {
            s.is_empty() || s == "SPAN_KIND_UNSPECIFIED" || s == "STATUS_CODE_UNSET"
        }
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
    }
}

/// Hex text as base64 of its bytes (empty if it is not hex).
fn base64_of_hex(hex: &str) -> String {
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect();
    bytes.map(|b| STANDARD.encode(b)).unwrap_or_default()
}

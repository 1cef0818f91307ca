//! OTLP/HTTP: `POST /v1/traces` with a protobuf or JSON `ExportTraceServiceRequest`,
//! answered as the OTLP specification says: 200 with an `ExportTraceServiceResponse`
//! (its `partialSuccess` naming spans refused by a limit) once the spans are durable;
//! 400 for a body that is not a valid request (nothing of it is kept); 413 and 415 for a
//! body too large or of a type or encoding not understood; 429 with `Retry-After` when
//! the server's memory budget is used up and 503 with `Retry-After` when the log cannot
//! be written. Errors carry a `google.rpc.Status` in the request's format.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use super::decode::{BodyFormat, Rejection, body_format, decode, decompress};
use super::{Ingest, RETRY_AFTER_SECONDS, Taken};
use crate::tenants::TENANT_HEADER;

/// The route counted in `/metrics`.
const ROUTE: &str = "/v1/traces";

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The OTLP/HTTP receiver's routes.
pub fn router(ingest: Arc<Ingest>) -> Router {
    // The body may be compressed: its limit is the uncompressed one, checked again
    // after decompressing.
    let limit = ingest.max_request_bytes;
    Router::new()
        .route("/v1/traces", post(export))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(ingest)
}

async fn export(State(ingest): State<Arc<Ingest>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let format = body_format(text(header::CONTENT_TYPE.as_str()));
    let answer_format = *format.as_ref().unwrap_or(&BodyFormat::Json);
    let response = match take(&ingest, &headers, &body, format).await {
        Ok(taken) => message(
            StatusCode::OK,
            answer_format,
            &ExportTraceServiceResponse {
                partial_success: taken.partial_success(),
            },
        ),
        Err(rejection) => error(answer_format, &rejection),
    };
    ingest.counters.record(
        ROUTE,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn take(
    ingest: &Ingest,
    headers: &HeaderMap,
    body: &Bytes,
    format: Result<BodyFormat, Rejection>,
) -> Result<Taken, Rejection> {
    let format = format?;
    let tenant = ingest.tenant(headers.get(TENANT_HEADER))?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let bytes = decompress(body, encoding, ingest.max_request_bytes)?;
    ingest
        .decode_and_take(&tenant, move || decode(bytes, format))
        .await
}

/// `body` as `format` encodes it, with `status`.
fn message<M: Message + serde::Serialize>(
    status: StatusCode,
    format: BodyFormat,
    body: &M,
) -> Response {
    match format {
        BodyFormat::Protobuf => (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            body.encode_to_vec(),
        )
            .into_response(),
        BodyFormat::Json => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(body).unwrap_or_default(),
        )
            .into_response(),
    }
}

/// The answer to a rejected request: its status, `Retry-After` where the sender should
/// retry, and a `google.rpc.Status`.
fn error(format: BodyFormat, rejection: &Rejection) -> Response {
    // gRPC codes: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE.
    let code = match rejection.status {
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        StatusCode::INTERNAL_SERVER_ERROR => 13,
        _ => 3,
    };
    let mut response = message(
        rejection.status,
        format,
        &RpcStatus {
            code,
            message: rejection.message.clone(),
        },
    );
    if matches!(
        rejection.status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(RETRY_AFTER_SECONDS),
        );
    }
    response
}

//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, answered
//! once the spans are durable, with a partial success naming spans refused by a limit.
//! Requests may be gzip or zstd compressed, as exporters send them.
//! A request that is not valid is `INVALID_ARGUMENT` and changes nothing; a full memory
//! budget is `RESOURCE_EXHAUSTED` and a log that cannot be written `UNAVAILABLE`, both
//! of which exporters retry.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::server::{Grpc, UnaryService};
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstEncoder};

use super::Ingest;
use super::decode::{BodyFormat, decode};
use crate::tenants::TENANT_HEADER;

/// The method's path.
pub const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The OTLP/gRPC receiver's routes (HTTP/2 without TLS).
pub fn router(ingest: Arc<Ingest>) -> Router {
    Router::new().route(EXPORT, post(export)).with_state(ingest)
}

async fn export(State(ingest): State<Arc<Ingest>>, request: Request) -> Response {
    let limit = ingest.max_request_bytes;
    let service = Export {
        tenant: request.headers().get(TENANT_HEADER).cloned(),
        ingest,
    };
    Grpc::new(RawRequests)
        .max_decoding_message_size(limit)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .unary(service, request)
        .await
        .map(axum::body::Body::new)
}

/// The codec of `Export` as the receiver takes it: requests as their protobuf bytes,
/// which the receiver decodes straight into an arena and logs as they came (no decoding
/// into the OTLP types, no encoding again), and responses through prost.
struct RawRequests;

impl Codec for RawRequests {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = ProstEncoder<ExportTraceServiceResponse>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<ExportTraceServiceResponse, ExportTraceServiceRequest>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// A request message's bytes, as they came (decompressed).
struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

/// One call of `Export`.
struct Export {
    ingest: Arc<Ingest>,
    tenant: Option<axum::http::HeaderValue>,
}

impl UnaryService<Bytes> for Export {
    type Response = ExportTraceServiceResponse;
    type Future =
        futures::future::BoxFuture<'static, Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = Arc::clone(&self.ingest);
        let tenant = self.tenant.take();
        Box::pin(async move {
            let started = Instant::now();
            let outcome = async {
                let tenant = ingest.tenant(tenant.as_ref())?;
                let message = request.into_inner();
                ingest
                    .decode_and_take(&tenant, move || decode(message, BodyFormat::Protobuf))
                    .await
            }
            .await;
            let (status, answer) = match outcome {
                Ok(taken) => (
                    StatusCode::OK,
                    Ok(tonic::Response::new(ExportTraceServiceResponse {
                        partial_success: taken.partial_success(),
                    })),
                ),
                Err(rejection) => {
                    let code = match rejection.status {
                        StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
                        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
                        StatusCode::INTERNAL_SERVER_ERROR => Code::Internal,
                        _ => Code::InvalidArgument,
                    };
                    (rejection.status, Err(Status::new(code, rejection.message)))
                }
            };
            ingest
                .counters
                .record(EXPORT, status.as_u16(), started.elapsed().as_secs_f64());
            answer
        })
    }
}

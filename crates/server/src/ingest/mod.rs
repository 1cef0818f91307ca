//! The server as a trace backend: OTLP receivers (`http`, `grpc`) on ports of their own,
//! whose spans go through the write-ahead log into each tenant's head (see
//! [`traceql_live`]) and are searchable from there; and the work behind them
//! (`background`): cutting the heads into searchable blocks every second, writing them
//! to the store when large or old enough, compacting and applying retention.
//!
//! A request's tenant is its `X-Scope-OrgID` header (HTTP) or metadata (gRPC), as for
//! queries. Refused spans (by a limit) are answered as a partial success; a body that is
//! not a valid request changes nothing.

mod background;
mod decode;
mod grpc;
mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
use prost::Message;
use tokio::net::TcpListener;
use traceql_exec::otlp::{request_from_spans, spans_of};
use traceql_live::{Live, Refused};

use crate::counters::Counters;
use crate::tenants::Tenants;

pub use decode::Rejection;
pub use grpc::EXPORT;

/// Seconds a sender is asked to wait before retrying a refused request.
pub const RETRY_AFTER_SECONDS: u16 = 1;

/// How the receivers and the work behind them run.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Where OTLP/HTTP is served, if it is.
    pub http: Option<SocketAddr>,
    /// Where OTLP/gRPC is served, if it is.
    pub grpc: Option<SocketAddr>,
    /// The largest request, uncompressed, in bytes.
    pub max_request_bytes: usize,
    /// How often pending spans are cut into searchable head blocks.
    pub cut_every: Duration,
    /// How often each tenant's store is compacted (and retention applied).
    pub maintain_every: Duration,
    /// Blocks whose spans all ended longer ago than this are removed.
    pub retention: Option<Duration>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            http: None,
            grpc: None,
            max_request_bytes: 32 << 20,
            cut_every: Duration::from_secs(1),
            maintain_every: Duration::from_secs(60),
            retention: None,
        }
    }
}

/// What the receivers share.
pub struct Ingest {
    live: Arc<Live>,
    tenants: Arc<Tenants>,
    counters: Arc<Counters>,
    max_request_bytes: usize,
}

/// What was made of an accepted request.
pub(crate) struct Taken {
    /// Spans refused by a limit.
    refused: usize,
    /// Why, for the sender.
    message: String,
}

impl Taken {
    /// The partial success to answer with, if spans were refused.
    fn partial_success(self) -> Option<ExportTracePartialSuccess> {
        (self.refused > 0).then_some(ExportTracePartialSuccess {
            rejected_spans: self.refused as i64,
            error_message: self.message,
        })
    }
}

impl Ingest {
    /// The tenant an `X-Scope-OrgID` header names (the default tenant without one).
    fn tenant(&self, header: Option<&HeaderValue>) -> Result<String, Rejection> {
        self.tenants.tenant_name(header).map_err(|e| Rejection {
            status: e.status,
            message: e.message,
        })
    }

    /// Decodes a request with `decode` on a blocking thread, then takes its spans for
    /// `tenant` (see [`Ingest::take`]).
    async fn decode_and_take(
        &self,
        tenant: &str,
        decode: impl FnOnce() -> Result<decode::Decoded, Rejection> + Send + 'static,
    ) -> Result<Taken, Rejection> {
        let decoded = tokio::task::spawn_blocking(decode)
            .await
            .map_err(|e| Rejection {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("decoding failed: {e}"),
            })??;
        self.take(tenant, decoded).await
    }

    /// Screens the spans of `decoded` for `tenant` and stores those within the limits;
    /// answers once they are durable.
    async fn take(&self, tenant: &str, decoded: decode::Decoded) -> Result<Taken, Rejection> {
        let screened = self.live.screen(tenant, decoded.spans);
        let refused = screened.refused();
        let message = screened.message(&self.live.options().limits);
        if screened.accepted.spans.is_empty() {
            return Ok(Taken { refused, message });
        }
        // The log keeps exactly the spans accepted.
        let payload = if refused == 0 {
            decoded.protobuf
        } else {
            request_from_spans(&spans_of(&screened.accepted))
                .encode_to_vec()
                .into()
        };
        match self.live.accept(tenant, payload, screened.accepted).await {
            Ok(_) => Ok(Taken { refused, message }),
            Err(refusal) => Err(Rejection {
                status: match refusal {
                    Refused::Busy => StatusCode::TOO_MANY_REQUESTS,
                    Refused::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                },
                message: refusal.to_string(),
            }),
        }
    }
}

/// Starts the receivers `options` names and the work behind them. The receivers take
/// no new requests once `stopping` turns true, and end when those under way are
/// answered (see [`Started::stop`]). Returns the addresses they listen on.
pub(crate) async fn start(
    live: Arc<Live>,
    tenants: Arc<Tenants>,
    counters: Arc<Counters>,
    options: &IngestOptions,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<Started> {
    let ingest = Arc::new(Ingest {
        live,
        tenants,
        counters,
        max_request_bytes: options.max_request_bytes,
    });
    let mut receivers = Vec::new();
    let mut addresses = (None, None);
    let receivers_of = [
        (options.http, "OTLP/HTTP", http::router(Arc::clone(&ingest))),
        (options.grpc, "OTLP/gRPC", grpc::router(Arc::clone(&ingest))),
    ];
    for (i, (address, name, app)) in receivers_of.into_iter().enumerate() {
        let Some(address) = address else {
            continue;
        };
        let listener = TcpListener::bind(address).await?;
        let bound = Some(listener.local_addr()?);
        if i == 0 {
            addresses.0 = bound;
        } else {
            addresses.1 = bound;
        }
        let mut stopping = stopping.clone();
        receivers.push(tokio::spawn(async move {
            let stopped = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                eprintln!("traceql serve: the {name} receiver stopped: {e}");
            }
        }));
    }
    Ok(Started {
        http: addresses.0,
        grpc: addresses.1,
        receivers,
        background: tokio::spawn(background::run(ingest, options.clone())),
    })
}

/// Receivers and work started.
pub(crate) struct Started {
    /// Where OTLP/HTTP listens.
    pub http: Option<SocketAddr>,
    /// Where OTLP/gRPC listens.
    pub grpc: Option<SocketAddr>,
    receivers: Vec<tokio::task::JoinHandle<()>>,
    background: tokio::task::JoinHandle<()>,
}

impl Started {
    /// Waits for the receivers to answer what is under way (once told to stop), then
    /// stops the work behind them: what is acknowledged is in the log, and the next
    /// start replays what was not yet written to the store.
    pub async fn stop(self) {
        for receiver in self.receivers {
            let _ = receiver.await;
        }
        self.background.abort();
    }
}

//! `traceql serve`: Grafana Tempo's query API over traceql engines, so that Grafana's
//! Tempo data source and Tempo's other clients can use traceql as their trace store.
//! Each tenant's engine (`X-Scope-OrgID`, see [`Tenants`]) is opened once and stays
//! warm between requests.
//!
//! Routes, one module each under `routes/`: `/api/echo`, `/ready` and
//! `/api/status/buildinfo` (`status`), `/api/search` (`search`), `/api/v2/traces/<id>`
//! and `/api/traces/<id>` (`trace`), the v2 and v1 tag and tag-value searches (`tags`),
//! `/api/metrics/query_range` and `/api/metrics/query` (`metrics`). Request parameters
//! are read as Tempo reads them (`params`); errors answer as Tempo answers them
//! (`error`): a bad request is a 400 with the reason as plain text, never a 500.
//! Queries run within [`Limits`] (`limits`): a few at once, each for a bounded time.
//! `/metrics` reports requests, latencies and what queries read (`counters`). The same
//! port speaks HTTP/2 without TLS too, and serves Tempo's streaming gRPC API there
//! ([`grpc`]).
//!
//! With [`Ingesting`], the server is a whole trace backend: OTLP/HTTP and OTLP/gRPC
//! receivers on ports of their own ([`ingest`]), spans acknowledged once durable in a
//! write-ahead log and searchable from the tenants' heads within a second, written to
//! the store as blocks, compacted and expired in the background.

mod counters;
mod error;
pub mod grpc;
pub mod ingest;
mod limits;
mod params;
mod routes;
mod tenants;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use limits::Limits;
pub use tenants::Tenants;

/// The router of Tempo's API over the engines of `tenants`, its queries run within
/// `limits`.
pub fn router(tenants: Arc<Tenants>, limits: Limits) -> Router {
    router_counting(tenants, limits, Arc::new(counters::Counters::default()))
}

fn router_counting(
    tenants: Arc<Tenants>,
    limits: Limits,
    counters: Arc<counters::Counters>,
) -> Router {
    let turns = limits::Turns::new(limits);
    let grpc = grpc::router(grpc::Shared {
        tenants: Arc::clone(&tenants),
        turns: Arc::clone(&turns),
        counters: Arc::clone(&counters),
    });
    routes::router(turns, counters)
        .with_state(tenants)
        .merge(grpc)
        .layer(axum::middleware::from_fn(limits::target_length))
}

/// The server's write path: the heads and log spans go through, and where and how it
/// takes them.
pub struct Ingesting {
    /// The heads and the write-ahead log.
    pub live: Arc<traceql_live::Live>,
    /// The receivers and the work behind them.
    pub options: ingest::IngestOptions,
    /// Called with the addresses the receivers listen on (HTTP, gRPC) once they do.
    pub listening: Box<dyn FnOnce(Option<SocketAddr>, Option<SocketAddr>) + Send>,
}

/// Serves Tempo's API over the engines of `tenants` on `listener` until `shutdown`
/// completes, then lets the requests under way finish. Meanwhile the tenants' blocks
/// are listed again as often as `tenants` says.
pub async fn serve(
    listener: TcpListener,
    tenants: Arc<Tenants>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_ingesting(listener, tenants, limits, None, shutdown).await
}

/// [`serve`], taking spans as `ingesting` says, if given.
pub async fn serve_ingesting(
    listener: TcpListener,
    tenants: Arc<Tenants>,
    limits: Limits,
    ingesting: Option<Ingesting>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let counters = Arc::new(counters::Counters::default());
    // Told to stop, the receivers take no new requests either.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let mut started = None;
    if let Some(ingesting) = ingesting {
        counters.set_live(Arc::clone(&ingesting.live));
        tenants.set_live(Arc::clone(&ingesting.live));
        for tenant in ingesting.live.tenants() {
            tenants.publish(&tenant, false).await;
        }
        let receivers = ingest::start(
            ingesting.live,
            Arc::clone(&tenants),
            Arc::clone(&counters),
            &ingesting.options,
            stopping,
        )
        .await?;
        (ingesting.listening)(receivers.http, receivers.grpc);
        started = Some(receivers);
    }
    let refresher = tenants.keep_fresh();
    // Answers go out as written: an HTTP/2 answer is several small writes (headers,
    // data, trailers), which Nagle's algorithm would hold back for the client's
    // delayed acknowledgement (40 ms on Linux).
    let listener = listener.tap_io(|connection| {
        if let Err(e) = connection.set_nodelay(true) {
            eprintln!("traceql serve: cannot set TCP_NODELAY on a connection: {e}");
        }
    });
    let served = axum::serve(listener, router_counting(tenants, limits, counters))
        .with_graceful_shutdown(shutdown)
        .await;
    refresher.abort();
    if let Some(receivers) = started {
        receivers.stop().await;
    }
    served
}

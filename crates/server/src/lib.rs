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

mod counters;
mod error;
pub mod grpc;
mod limits;
mod params;
mod routes;
mod tenants;

use std::future::Future;
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
    let counters = Arc::new(counters::Counters::default());
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

/// Serves Tempo's API over the engines of `tenants` on `listener` until `shutdown`
/// completes, then lets the requests under way finish. Meanwhile the tenants' blocks
/// are listed again as often as `tenants` says.
pub async fn serve(
    listener: TcpListener,
    tenants: Arc<Tenants>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresher = tenants.keep_fresh();
    // Answers go out as written: an HTTP/2 answer is several small writes (headers,
    // data, trailers), which Nagle's algorithm would hold back for the client's
    // delayed acknowledgement (40 ms on Linux).
    let listener = listener.tap_io(|connection| {
        if let Err(e) = connection.set_nodelay(true) {
            eprintln!("traceql serve: cannot set TCP_NODELAY on a connection: {e}");
        }
    });
    let served = axum::serve(listener, router(tenants, limits))
        .with_graceful_shutdown(shutdown)
        .await;
    refresher.abort();
    served
}

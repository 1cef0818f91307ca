//! The routes of Tempo's query API, one module per group of endpoints.

pub(crate) mod metrics;
mod prometheus;
pub(crate) mod search;
mod status;
pub(crate) mod tags;
mod trace;

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware};
use serde::Serialize;

use crate::counters::{Counters, count};
use crate::limits::{Turns, in_turn};
use crate::tenants::Tenants;

/// What every handler reads: the tenants' warm engines.
pub type Shared = Arc<Tenants>;

/// Every route, and Tempo's 404 for the rest. The query routes run in `turns`; the
/// status routes answer at once; every route is counted in `counters`, which
/// `/metrics` reports.
pub fn router(turns: Arc<Turns>, counters: Arc<Counters>) -> Router<Shared> {
    let queries = Router::new()
        .route("/api/search", get(search::search))
        .route("/api/v2/traces/{id}", get(trace::trace_v2))
        .route("/api/traces/{id}", get(trace::trace_v1))
        .route("/api/v2/search/tags", get(tags::tags_v2))
        .route("/api/search/tags", get(tags::tags_v1))
        .route("/api/v2/search/tag/{tag}/values", get(tags::values_v2))
        .route("/api/search/tag/{tag}/values", get(tags::values_v1))
        .route("/api/metrics/query_range", get(metrics::query_range))
        .route("/api/metrics/query", get(metrics::query_instant))
        .route(
            "/prometheus/api/v1/query",
            get(prometheus::query_get).post(prometheus::query_post),
        )
        .route_layer(middleware::from_fn_with_state(turns, in_turn));
    Router::new()
        .route("/api/echo", get(status::echo))
        .route("/ready", get(status::ready))
        .route("/api/status/buildinfo", get(status::buildinfo))
        .route(
            "/prometheus/api/v1/status/buildinfo",
            get(prometheus::buildinfo),
        )
        .route(
            "/metrics",
            get(crate::counters::metrics).with_state(Arc::clone(&counters)),
        )
        .merge(queries)
        .route_layer(middleware::from_fn_with_state(counters, count))
        .fallback(not_found)
}

/// Tempo's answer to a path it does not serve.
async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// A plain-text answer.
fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A JSON answer.
fn json(value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => crate::ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the answer could not be written as JSON: {e}"),
        }
        .into_response(),
    }
}

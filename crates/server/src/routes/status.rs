//! `/api/echo`, `/ready` and `/api/status/buildinfo`: what health checks call.

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

/// `GET /api/echo`: `echo`, as Tempo answers it (Grafana's "Save & test").
pub async fn echo() -> Response {
    super::text(StatusCode::OK, "echo\n")
}

/// `GET /ready`: the engine is open, so the server is ready.
pub async fn ready() -> Response {
    super::text(StatusCode::OK, "ready\n")
}

/// Tempo's build information fields.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildInfo {
    version: &'static str,
    revision: &'static str,
    branch: &'static str,
    build_user: &'static str,
    build_date: &'static str,
    go_version: &'static str,
}

/// `GET /api/status/buildinfo`: this build's version, in Tempo's fields (those that
/// only a Go build has are empty).
pub async fn buildinfo() -> Response {
    super::json(&BuildInfo {
        version: concat!("traceql-", env!("CARGO_PKG_VERSION")),
        revision: "",
        branch: "",
        build_user: "",
        build_date: "",
        go_version: "",
    })
}

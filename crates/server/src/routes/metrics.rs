//! `GET /api/metrics/query_range` and `GET /api/metrics/query`: TraceQL metrics as
//! Tempo's `QueryRangeResponse` and `QueryInstantResponse` JSON.

use std::sync::Arc;

use axum::Extension;
use axum::extract::Query;
use axum::response::Response;
use traceql_exec::metrics::{MetricsOptions, MetricsResponse};

use crate::counters::Counters;
use crate::error::ApiError;
use crate::params::{self, Params};
use crate::tenants::Tenant;
use traceql_exec::{Engine, ParsedQuery};

/// `text` parsed as a metrics query; refused when it is empty or a search.
pub(crate) fn metrics_query(text: &str) -> Result<ParsedQuery, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "invalid request: q (a TraceQL metrics query) is required",
        ));
    }
    let parsed = ParsedQuery::parse(text)?;
    if !parsed.is_metrics() {
        return Err(ApiError::bad_request("not a metrics query"));
    }
    Ok(parsed)
}

/// Runs the metrics query of `params` with `instant` or a step.
async fn run(
    engine: &Engine,
    counters: &Counters,
    params: &Params,
    instant: bool,
) -> Result<MetricsResponse, ApiError> {
    let query = metrics_query(params.get("q").map_or("", String::as_str))?;
    let range = params::range(params)?;
    let options = MetricsOptions {
        start_unix_nano: range.start,
        end_unix_nano: range.end,
        step_nano: if instant {
            None
        } else {
            params::duration_nanos(params, "step")?
        },
        instant,
    };
    let (response, stats) = engine.metrics_parsed(&query, &options).await?;
    counters.ran(&stats);
    Ok(response)
}

/// `GET /api/metrics/query_range` (`q`, `start`, `end`, `step`).
pub async fn query_range(
    Tenant(engine): Tenant,
    Extension(counters): Extension<Arc<Counters>>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let response = run(&engine, &counters, &params, false).await?;
    Ok(super::json(&response))
}

/// `GET /api/metrics/query` (`q`, `start`, `end`): one value per series.
pub async fn query_instant(
    Tenant(engine): Tenant,
    Extension(counters): Extension<Arc<Counters>>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let response = run(&engine, &counters, &params, true).await?;
    Ok(super::json(&response.instant()))
}

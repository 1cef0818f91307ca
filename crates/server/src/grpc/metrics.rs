//! `StreamingQuerier/MetricsQueryRange` and `MetricsQueryInstant`: a TraceQL metrics
//! query, sent as one whole answer when it is done. Times are unix nanoseconds here,
//! as Grafana sends them.

use axum::extract::{Request, State};
use axum::response::Response;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use traceql_exec::metrics::{MetricsOptions, MetricsResponse};
use traceql_exec::search::Attribute;
use traceql_format::value::Value;

use super::messages::{
    InstantSeries, PartialStatus, QueryInstantRequest, QueryInstantResponse, QueryRangeRequest,
    QueryRangeResponse, Sample, SearchMetrics, TimeSeries,
};
use super::{Call, Shared, stream};
use crate::error::ApiError;
use crate::routes::metrics::metrics_query;

/// `MetricsQueryRange`.
pub(super) async fn query_range(State(shared): State<Shared>, request: Request) -> Response {
    stream(
        shared,
        request,
        |request: QueryRangeRequest, call: Call<QueryRangeResponse>| async move {
            let step = (request.step > 0).then_some(request.step);
            let response = run(&call, &request.query, request.start, request.end, step).await?;
            let timestamps = response.timestamps();
            let series = response
                .series
                .iter()
                .map(|s| TimeSeries {
                    labels: labels(&s.labels),
                    samples: s
                        .values
                        .iter()
                        .zip(&timestamps)
                        .filter(|(v, _)| !v.is_nan())
                        .map(|(v, t)| Sample {
                            value: *v,
                            timestamp_ms: i64::try_from(*t).unwrap_or(i64::MAX),
                        })
                        .collect(),
                })
                .collect();
            call.send(QueryRangeResponse {
                series,
                metrics: Some(metrics(&response)),
                status: PartialStatus::Complete.into(),
                message: String::new(),
            })?;
            Ok(())
        },
    )
    .await
}

/// `MetricsQueryInstant`.
pub(super) async fn query_instant(State(shared): State<Shared>, request: Request) -> Response {
    stream(
        shared,
        request,
        |request: QueryInstantRequest, call: Call<QueryInstantResponse>| async move {
            let response = run(&call, &request.query, request.start, request.end, None).await?;
            let series = response
                .series
                .iter()
                .filter_map(|s| {
                    let value = s.values.first().copied().filter(|v| !v.is_nan())?;
                    Some(InstantSeries {
                        labels: labels(&s.labels),
                        value,
                    })
                })
                .collect();
            call.send(QueryInstantResponse {
                series,
                metrics: Some(metrics(&response)),
                status: PartialStatus::Complete.into(),
                message: String::new(),
            })?;
            Ok(())
        },
    )
    .await
}

/// Runs the metrics `query` from `start` to `end` (unix nanoseconds, 0: open) with
/// `step`, or as an instant query without one.
async fn run<M>(
    call: &Call<M>,
    query: &str,
    start: u64,
    end: u64,
    step: Option<u64>,
) -> Result<MetricsResponse, ApiError> {
    let parsed = metrics_query(query)?;
    let open = |t: u64| (t > 0).then_some(t);
    if start > 0 && end > 0 && end <= start {
        return Err(ApiError::bad_request(format!(
            "invalid range: end ({end}) must be after start ({start})"
        )));
    }
    let options = MetricsOptions {
        start_unix_nano: open(start),
        end_unix_nano: open(end),
        step_nano: step,
        instant: step.is_none(),
    };
    let (response, stats) = call.engine.metrics_parsed(&parsed, &options).await?;
    call.ran(&stats);
    Ok(response)
}

/// What a metrics query read, as Tempo's search metrics of a finished query.
fn metrics(response: &MetricsResponse) -> SearchMetrics {
    SearchMetrics {
        inspected_bytes: response.inspected_bytes,
        inspected_spans: response.inspected_spans,
        completed_jobs: 1,
        total_jobs: 1,
        ..SearchMetrics::default()
    }
}

/// A series' labels; a nil value is an empty `AnyValue`, as Tempo sends it.
fn labels(labels: &[(String, Option<Value>)]) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: Some(
                value
                    .as_ref()
                    .map_or_else(AnyValue::default, traceql_exec::otlp::any_value),
            ),
            ..KeyValue::default()
        })
        .collect()
}

/// Attributes of search results.
pub(super) fn key_values(attributes: &[Attribute]) -> Vec<KeyValue> {
    attributes
        .iter()
        .map(|a| KeyValue {
            key: a.key.clone(),
            value: Some(traceql_exec::otlp::any_value(&a.value)),
            ..KeyValue::default()
        })
        .collect()
}

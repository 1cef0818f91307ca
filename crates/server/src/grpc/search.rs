//! `StreamingQuerier/Search`: a search whose traces are sent round by round, as
//! [`traceql_exec::Engine::search_progressive`] finds them final, in messages of at
//! most about 1 MiB, each with the search's progress (`completedJobs` of `totalJobs`:
//! rounds done, and one more while it goes on) and what it has read so far.

use axum::extract::{Request, State};
use axum::response::Response;
use prost::Message;
use traceql_exec::search::{SearchMetrics as Read, SpanResult, SpanSet as FoundSpanSet};
use traceql_exec::{Order, ParsedQuery, SearchOptions, SearchResults};

use super::messages::{
    SearchMetrics, SearchRequest, SearchResponse, Span, SpanSet, TraceSearchMetadata,
};
use super::{Call, Shared, seconds_range, stream};
use crate::error::ApiError;
use crate::routes::search::{DEFAULT_LIMIT, DEFAULT_SPSS, SearchRequest as Search, legacy_query};

/// `Search`.
pub(super) async fn search(State(shared): State<Shared>, request: Request) -> Response {
    stream(shared, request, run).await
}

/// The search `request` asks for, as the HTTP API reads it from its parameters.
fn read(request: &SearchRequest) -> Result<Search, ApiError> {
    let range = seconds_range(request.start, request.end)?;
    let or = |n: u32, default: usize| if n == 0 { default } else { n as usize };
    let options = SearchOptions {
        limit: or(request.limit, DEFAULT_LIMIT),
        order: Order::Newest,
        spans_per_spanset: or(request.spans_per_span_set, DEFAULT_SPSS),
        start_unix_nano: range.start,
        end_unix_nano: range.end,
    };
    let query = request.query.trim();
    let legacy = query.is_empty();
    if !legacy && !request.tags.is_empty() {
        return Err(ApiError::bad_request(
            "invalid request: Query and Tags cannot both be given",
        ));
    }
    let query = if legacy {
        let mut tags: Vec<(String, String)> = request.tags.clone().into_iter().collect();
        tags.sort();
        let millis = |ms: u32| (ms > 0).then(|| u64::from(ms) * 1_000_000);
        legacy_query(
            &tags,
            millis(request.min_duration_ms),
            millis(request.max_duration_ms),
        )?
    } else {
        query.to_string()
    };
    Ok(Search {
        query,
        options,
        legacy,
    })
}

/// Runs the search of `request`, sending each round's traces.
async fn run(request: SearchRequest, call: Call<SearchResponse>) -> Result<(), ApiError> {
    let Search {
        query,
        options,
        legacy,
    } = read(&request)?;
    let parsed = ParsedQuery::parse(&query)?;
    let mut rounds = 0u32;
    let stats = call
        .engine
        .search_progressive(&parsed, &options, |results, last| {
            rounds += 1;
            // While the search goes on, one more part is known to come.
            let total = if last { rounds } else { rounds + 1 };
            messages(&results, legacy, rounds, total)
                .into_iter()
                .try_for_each(|message| call.send(message))
        })
        .await?;
    call.ran(&stats);
    Ok(())
}

/// The most a message's traces take, encoded, before the next go to another message:
/// Tempo's default packet size for streamed answers. gRPC clients (Grafana's among
/// them) refuse messages over 4 MiB.
const MESSAGE_BYTES: usize = 1 << 20;

/// The messages of the traces of `results`, `completed` parts of `total` done: one,
/// or as many as keep each under [`MESSAGE_BYTES`] (a single trace larger than that
/// goes alone). Each carries the metrics.
fn messages(
    results: &SearchResults,
    legacy: bool,
    completed: u32,
    total: u32,
) -> Vec<SearchResponse> {
    let metrics = Some(metrics(&results.metrics, completed, total));
    let mut messages = Vec::new();
    let mut traces: Vec<TraceSearchMetadata> = Vec::new();
    let mut bytes = 0;
    for t in results.traces() {
        let span_sets: Vec<SpanSet> = if legacy {
            Vec::new()
        } else {
            t.span_sets.iter().map(span_set).collect()
        };
        let trace = TraceSearchMetadata {
            trace_id: t.trace_id,
            root_service_name: t.root_service_name,
            root_trace_name: t.root_trace_name,
            start_time_unix_nano: t.start_time_unix_nano,
            duration_ms: narrow(t.duration_ms),
            span_set: span_sets.first().cloned(),
            span_sets,
        };
        // The trace, its field key and its length.
        let size = trace.encoded_len() + 6;
        if !traces.is_empty() && bytes + size > MESSAGE_BYTES {
            messages.push(SearchResponse {
                traces: std::mem::take(&mut traces),
                metrics,
            });
            bytes = 0;
        }
        bytes += size;
        traces.push(trace);
    }
    messages.push(SearchResponse { traces, metrics });
    messages
}

/// Tempo's search metrics for what a search read, `completed` parts of `total` done.
fn metrics(read: &Read, completed: u32, total: u32) -> SearchMetrics {
    SearchMetrics {
        inspected_traces: narrow(read.inspected_traces),
        inspected_bytes: read.inspected_bytes,
        total_blocks: narrow(read.total_blocks),
        completed_jobs: completed,
        total_jobs: total,
        total_block_bytes: read.total_block_bytes,
        inspected_spans: read.inspected_spans,
    }
}

fn span_set(set: &FoundSpanSet) -> SpanSet {
    SpanSet {
        spans: set.spans.iter().map(span).collect(),
        matched: narrow(set.matched),
        attributes: super::metrics::key_values(&set.attributes),
    }
}

fn span(span: &SpanResult) -> Span {
    Span {
        span_id: span.span_id.clone(),
        name: span.name.clone(),
        start_time_unix_nano: span.start_time_unix_nano,
        duration_nanos: span.duration_nanos,
        attributes: super::metrics::key_values(&span.attributes),
    }
}

/// `n` as a 32-bit field, at most its largest value.
fn narrow(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

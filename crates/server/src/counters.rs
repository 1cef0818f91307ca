//! What `/metrics` reports, in Prometheus' text format: requests by route and status,
//! their latency as a histogram per route, and the bytes and spans queries read.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use traceql_exec::QueryStats;
use traceql_live::Live;

/// Upper bounds of the latency buckets, in seconds.
const BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The latencies of one route.
#[derive(Default)]
struct Latency {
    /// Per bound of [`BOUNDS`], the requests at or under it; then all of them.
    buckets: [u64; BOUNDS.len() + 1],
    sum: f64,
}

/// The server's counters.
#[derive(Default)]
pub struct Counters {
    /// Requests by (route, status).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Latency>>,
    bytes: AtomicU64,
    spans: AtomicU64,
    /// Microseconds queries spent planning (rounds included) and executing.
    planning_micros: AtomicU64,
    execution_micros: AtomicU64,
    /// The write path, when the server takes spans.
    live: OnceLock<Arc<Live>>,
}

impl Counters {
    /// Reports the write path `live` too.
    pub fn set_live(&self, live: Arc<Live>) {
        let _ = self.live.set(live);
    }

    /// Counts what a query read and where its time went, from its statistics.
    pub fn ran(&self, stats: &QueryStats) {
        self.bytes.fetch_add(stats.bytes_scanned, Ordering::Relaxed);
        self.spans.fetch_add(stats.spans_scanned, Ordering::Relaxed);
        let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.planning_micros
            .fetch_add(micros(stats.planning), Ordering::Relaxed);
        self.execution_micros
            .fetch_add(micros(stats.execution), Ordering::Relaxed);
    }

    /// Counts a request of `route` answered with `status` after `seconds`.
    pub fn record(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            let l = latency.entry(route.to_string()).or_default();
            for (i, bound) in BOUNDS.iter().enumerate() {
                if seconds <= *bound {
                    l.buckets[i] += 1;
                }
            }
            l.buckets[BOUNDS.len()] += 1;
            l.sum += seconds;
        }
    }

    /// The counters in Prometheus' text format.
    pub fn exposition(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP traceql_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE traceql_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((route, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "traceql_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP traceql_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE traceql_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (route, l) in latency.iter() {
                for (i, bound) in BOUNDS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "traceql_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        l.buckets[i]
                    );
                }
                let all = l.buckets[BOUNDS.len()];
                let _ = writeln!(
                    out,
                    "traceql_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {all}"
                );
                let _ = writeln!(
                    out,
                    "traceql_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    l.sum
                );
                let _ = writeln!(
                    out,
                    "traceql_request_duration_seconds_count{{route=\"{route}\"}} {all}"
                );
            }
        }
        for (name, help, value) in [
            (
                "traceql_scanned_bytes_total",
                "Bytes queries read from blocks.",
                &self.bytes,
            ),
            (
                "traceql_scanned_spans_total",
                "Spans queries read.",
                &self.spans,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        for (name, help, micros) in [
            (
                "traceql_query_planning_seconds_total",
                "Time searches and metrics queries spent planning (every round).",
                &self.planning_micros,
            ),
            (
                "traceql_query_execution_seconds_total",
                "Time searches and metrics queries spent running their plans.",
                &self.execution_micros,
            ),
        ] {
            let seconds = micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {seconds}");
        }
        if let Some(live) = self.live.get() {
            live_exposition(&mut out, live);
        }
        out
    }
}

/// The write path's counters and gauges.
fn live_exposition(out: &mut String, live: &Live) {
    let c = &live.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    for (name, help, kind, value) in [
        (
            "traceql_ingest_spans_total",
            "Spans accepted.",
            "counter",
            load(&c.spans),
        ),
        (
            "traceql_ingest_refused_spans_total",
            "Spans refused by a limit (spans per trace, attribute size).",
            "counter",
            load(&c.refused_spans),
        ),
        (
            "traceql_ingest_busy_total",
            "Requests refused because the memory budget was used up (429, RESOURCE_EXHAUSTED).",
            "counter",
            load(&c.busy),
        ),
        (
            "traceql_flushes_total",
            "Heads written to the store.",
            "counter",
            load(&c.flushes),
        ),
        (
            "traceql_flushed_spans_total",
            "Spans written to the store from the heads.",
            "counter",
            load(&c.flushed_spans),
        ),
        (
            "traceql_flush_failures_total",
            "Writes of a head to the store that failed (they are retried).",
            "counter",
            load(&c.flush_failures),
        ),
        (
            "traceql_head_spans",
            "Spans in the heads, not yet in the store.",
            "gauge",
            live.head_spans() as u64,
        ),
        (
            "traceql_ingest_memory_bytes",
            "Memory the heads hold, against the ingest memory limit.",
            "gauge",
            live.held() as u64,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// Counts every request by its route (the pattern, so trace ids do not make routes of
/// their own) and status, and times it; handlers find the counters in the request's
/// extensions.
pub async fn count(
    State(counters): State<Arc<Counters>>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    request.extensions_mut().insert(Arc::clone(&counters));
    let started = Instant::now();
    let response = next.run(request).await;
    counters.record(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub async fn metrics(State(counters): State<Arc<Counters>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        counters.exposition(),
    )
        .into_response()
}

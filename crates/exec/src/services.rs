//! The service graph of stored spans: which service calls which, how often, how slowly
//! and how often in failure, by Grafana Tempo's service-graph rules (see
//! `traceql_planner::ops::service_edges`), over a time window and optionally only the
//! traces a TraceQL search matches. Pictures of it: [`ServiceGraph::dot`] and
//! [`ServiceGraph::mermaid`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use datafusion::arrow::array::{Array, Float64Array, Int64Array, ListArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use serde::Serialize;
use traceql_planner::services::{self as plan, CLIENT, CONNECTION_TYPE, SERVER};

use crate::engine::{
    Answer, Engine, EngineError, ParsedQuery, QueryStats, TimeRange, Window, search_of,
};
pub use traceql_planner::services::SERVER_BUCKETS;

/// What a service graph covers.
#[derive(Clone, Debug, Default)]
pub struct ServicesOptions {
    /// Requests from this time on, unix nanoseconds (default: the store's first span).
    pub start_unix_nano: Option<u64>,
    /// Requests before this time, unix nanoseconds (default: after the store's last
    /// span).
    pub end_unix_nano: Option<u64>,
    /// Only the traces this search matches (at least one span).
    pub query: Option<ParsedQuery>,
}

/// Latency percentiles, in seconds, exact (interpolated linearly between the two
/// nearest values where a percentile falls between them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// The mean.
    pub avg: f64,
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// Requests from one service to another over one kind of connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// The calling service, or a virtual node (`user`, a peer attribute).
    pub client: String,
    /// The called service, database or virtual node.
    pub server: String,
    /// `""` (unset: client and server spans), `messaging_system`, `database` or
    /// `virtual_node`, as Tempo's `connection_type` label.
    pub connection_type: String,
    /// Requests.
    pub requests: u64,
    /// Requests that failed (either side has status error).
    pub failed: u64,
    /// Requests per second over the window.
    pub rate: f64,
    /// The server side's latency (0 for a request whose server is a virtual node).
    pub server_latency: Latency,
    /// The client side's latency (0 for a request from a virtual node).
    pub client_latency: Latency,
    /// How many requests had a server latency of at most each of
    /// [`SERVER_BUCKETS`] (cumulative, as Prometheus
    /// histograms count).
    pub server_buckets: Vec<u64>,
}

/// A service (or database, or virtual node) of the graph, with the requests it
/// received.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Its name.
    pub name: String,
    /// Requests received; 0 for a node that only calls others (`user`).
    pub requests: u64,
    /// Received requests that failed.
    pub failed: u64,
    /// Requests received per second.
    pub rate: f64,
    /// The mean server-side latency of the requests received, seconds; `None` if it
    /// received none.
    pub avg_latency: Option<f64>,
}

impl Node {
    /// The share of received requests that failed (0 without requests).
    pub fn failure_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failed as f64 / self.requests as f64
        }
    }
}

/// The service graph of a window: its edges, busiest first, and its nodes, by name.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceGraph {
    /// Start of the window, unix nanoseconds.
    pub start_unix_nano: u64,
    /// End of the window (exclusive), unix nanoseconds.
    pub end_unix_nano: u64,
    /// Edges, by requests descending, then client, server and connection type.
    pub edges: Vec<Edge>,
    /// Nodes, by name.
    pub nodes: Vec<Node>,
}

impl Engine {
    /// The service graph of the requests that start in the window of `options`, in the
    /// traces its query matches (all traces without one).
    pub async fn services(
        &self,
        options: &ServicesOptions,
    ) -> Result<(ServiceGraph, QueryStats), EngineError> {
        let started = Instant::now();
        let io = self.store.io();
        let first = self.blocks().map(|b| b.start_unix_nano).min().unwrap_or(0);
        let last = self.blocks().map(|b| b.end_unix_nano).max().unwrap_or(0);
        let start = options.start_unix_nano.unwrap_or(first);
        let end = options.end_unix_nano.unwrap_or(last + 1).max(start + 1);
        let range = TimeRange {
            start_unix_nano: Some(start),
            end_unix_nano: Some(end),
        };
        let pipeline = search_of(options.query.as_ref(), "services")?;
        let blocks = self.select(&range, None);
        let mut stats = QueryStats {
            blocks: blocks.len() as u64,
            ..QueryStats::default()
        };
        let (scan, facts) = self.scan(&range, &blocks, Window::ALL).await?;
        let mut requests = plan::plan_requests(scan, &facts, Some(start), Some(end))?;
        if let Some(pipeline) = pipeline {
            requests = self.in_matching_traces(requests, &range, pipeline).await?;
        }
        let graph = plan::plan_graph(requests)?;
        stats.planning = started.elapsed();
        let batches = self.execute(&graph, &blocks, &mut stats).await?;
        let assembling = Instant::now();
        let seconds = (end - start) as f64 / 1e9;
        let graph = assemble(&batches, seconds, start, end)?;
        stats.execution += assembling.elapsed();
        stats.io = self.store.io().since(io);
        Ok((graph, stats))
    }
}

/// The graph from the aggregate's rows.
fn assemble(
    batches: &[RecordBatch],
    seconds: f64,
    start: u64,
    end: u64,
) -> Result<ServiceGraph, EngineError> {
    let mut edges = Vec::new();
    for batch in batches {
        let answer = Answer::new(batch, "the service graph");
        let client = answer.text(CLIENT)?;
        let server = answer.text(SERVER)?;
        let connection_type = answer.text(CONNECTION_TYPE)?;
        let counts = |name: &str| answer.cast::<Int64Array>(name, DataType::Int64);
        let requests = counts(plan::REQUESTS)?;
        let failed = counts(plan::FAILED_REQUESTS)?;
        let latency = |quantiles: &str, sum: &str| -> Result<Vec<Latency>, EngineError> {
            let sums = answer.cast::<Float64Array>(sum, DataType::Float64)?;
            let lists = answer.column::<ListArray>(quantiles)?;
            (0..batch.num_rows())
                .map(|row| {
                    let n = requests.value(row).max(1) as f64;
                    let p = lists.value(row);
                    let p = p
                        .as_any()
                        .downcast_ref::<Float64Array>()
                        .filter(|p| p.len() == 3)
                        .ok_or_else(|| {
                            EngineError::internal(format!("`{quantiles}` is not three numbers"))
                        })?;
                    Ok(Latency {
                        avg: sums.value(row) / n / 1e9,
                        p50: p.value(0),
                        p90: p.value(1),
                        p99: p.value(2),
                    })
                })
                .collect()
        };
        let server_latency = latency(plan::SERVER_QUANTILES, plan::SERVER_NANOS_SUM)?;
        let client_latency = latency(plan::CLIENT_QUANTILES, plan::CLIENT_NANOS_SUM)?;
        let buckets: Vec<Int64Array> = SERVER_BUCKETS
            .iter()
            .map(|b| counts(&plan::bucket_column(*b)))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            edges.push(Edge {
                client: client.get(row).unwrap_or_default().to_string(),
                server: server.get(row).unwrap_or_default().to_string(),
                connection_type: connection_type.get(row).unwrap_or_default().into(),
                requests: requests.value(row) as u64,
                failed: failed.value(row) as u64,
                rate: requests.value(row) as f64 / seconds,
                server_latency: server_latency[row],
                client_latency: client_latency[row],
                server_buckets: buckets.iter().map(|b| b.value(row) as u64).collect(),
            });
        }
    }
    edges.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.client.cmp(&b.client))
            .then_with(|| a.server.cmp(&b.server))
            .then_with(|| a.connection_type.cmp(&b.connection_type))
    });
    // A node received what its incoming edges carried (added up in the edges' order,
    // so that the same edges give the same sums).
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut seconds_in: BTreeMap<&str, f64> = BTreeMap::new();
    for e in &edges {
        for name in [&e.client, &e.server] {
            nodes.entry(name.clone()).or_insert_with(|| Node {
                name: name.clone(),
                requests: 0,
                failed: 0,
                rate: 0.0,
                avg_latency: None,
            });
        }
        let node = nodes.get_mut(&e.server).expect("inserted above");
        node.requests += e.requests;
        node.failed += e.failed;
        *seconds_in.entry(&e.server).or_default() += e.server_latency.avg * e.requests as f64;
    }
    for node in nodes.values_mut().filter(|n| n.requests > 0) {
        node.rate = node.requests as f64 / seconds;
        node.avg_latency = Some(seconds_in[node.name.as_str()] / node.requests as f64);
    }
    Ok(ServiceGraph {
        start_unix_nano: start,
        end_unix_nano: end,
        edges,
        nodes: nodes.into_values().collect(),
    })
}

/// Latency in milliseconds, as the JSON answer gives it.
#[derive(Serialize)]
struct LatencyMs {
    avg: f64,
    p50: f64,
    p90: f64,
    p99: f64,
}

impl From<&Latency> for LatencyMs {
    fn from(l: &Latency) -> Self {
        LatencyMs {
            avg: l.avg * 1e3,
            p50: l.p50 * 1e3,
            p90: l.p90 * 1e3,
            p99: l.p99 * 1e3,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EdgeJson<'a> {
    client: &'a str,
    server: &'a str,
    connection_type: &'a str,
    requests: u64,
    failed: u64,
    rate: f64,
    server_latency_ms: LatencyMs,
    client_latency_ms: LatencyMs,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeJson<'a> {
    name: &'a str,
    requests: u64,
    failed: u64,
    failure_ratio: f64,
    rate: f64,
    avg_latency_ms: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphJson<'a> {
    start_unix_nano: String,
    end_unix_nano: String,
    edges: Vec<EdgeJson<'a>>,
    nodes: Vec<NodeJson<'a>>,
}

/// The JSON answer: the window (unix nanoseconds, as strings), `edges` with `client`,
/// `server`, `connectionType`, `requests`, `failed`, `rate` (per second) and
/// `serverLatencyMs` / `clientLatencyMs` (`avg`, `p50`, `p90`, `p99`), and `nodes` with
/// `name`, `requests`, `failed`, `failureRatio`, `rate` and `avgLatencyMs` (null for a
/// node that received no requests).
impl Serialize for ServiceGraph {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        GraphJson {
            start_unix_nano: self.start_unix_nano.to_string(),
            end_unix_nano: self.end_unix_nano.to_string(),
            edges: self
                .edges
                .iter()
                .map(|e| EdgeJson {
                    client: &e.client,
                    server: &e.server,
                    connection_type: &e.connection_type,
                    requests: e.requests,
                    failed: e.failed,
                    rate: e.rate,
                    server_latency_ms: (&e.server_latency).into(),
                    client_latency_ms: (&e.client_latency).into(),
                })
                .collect(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeJson {
                    name: &n.name,
                    requests: n.requests,
                    failed: n.failed,
                    failure_ratio: n.failure_ratio(),
                    rate: n.rate,
                    avg_latency_ms: n.avg_latency.map(|s| s * 1e3),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

/// A latency in seconds as a short text: `850µs`, `12.3ms`, `1.42s`.
pub fn short_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2}s")
    } else if s >= 1e-3 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{:.0}µs", s * 1e6)
    }
}

/// What an edge's label in a picture says: requests, failures and server p90.
fn edge_label(e: &Edge) -> String {
    let mut label = format!("{} req", e.requests);
    if e.failed > 0 {
        let _ = write!(
            label,
            ", {:.1}% failed",
            100.0 * e.failed as f64 / e.requests as f64
        );
    }
    let latency = if e.server_latency.p90 > 0.0 {
        e.server_latency.p90
    } else {
        e.client_latency.p90
    };
    let _ = write!(label, ", p90 {}", short_seconds(latency));
    if !e.connection_type.is_empty() {
        let _ = write!(label, " ({})", e.connection_type);
    }
    label
}

impl ServiceGraph {
    /// The graph in Graphviz's DOT language (`dot -Tsvg`): a box per service labelled
    /// with the requests it received, an arrow per edge labelled with its requests,
    /// failures and p90 latency; failing edges red.
    pub fn dot(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut out = String::from(
            "digraph services {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
        );
        for n in &self.nodes {
            let label = match n.avg_latency {
                Some(avg) => format!(
                    "{}\\n{} req, {:.1}% failed\\navg {}",
                    n.name,
                    n.requests,
                    100.0 * n.failure_ratio(),
                    short_seconds(avg)
                ),
                None => n.name.clone(),
            };
            let _ = writeln!(
                out,
                "  {} [label=\"{}\"];",
                quote(&n.name),
                label.replace('"', "\\\"")
            );
        }
        for e in &self.edges {
            let color = if e.failed > 0 { ", color=red" } else { "" };
            let _ = writeln!(
                out,
                "  {} -> {} [label={}{color}];",
                quote(&e.client),
                quote(&e.server),
                quote(&edge_label(e))
            );
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart (renders in GitHub and GitLab Markdown).
    pub fn mermaid(&self) -> String {
        let id = |name: &str| -> String {
            let i = self.nodes.iter().position(|n| n.name == name).unwrap_or(0);
            format!("n{i}")
        };
        let text = |s: &str| s.replace('"', "#quot;");
        let mut out = String::from("flowchart LR\n");
        for n in &self.nodes {
            let _ = writeln!(out, "  {}[\"{}\"]", id(&n.name), text(&n.name));
        }
        for e in &self.edges {
            let _ = writeln!(
                out,
                "  {} -->|\"{}\"| {}",
                id(&e.client),
                text(&edge_label(e)),
                id(&e.server)
            );
        }
        out
    }
}

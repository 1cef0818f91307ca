//! The service graph as a table: its edges, busiest first, then its nodes.

use traceql_exec::services::{ServiceGraph, short_seconds};

use super::{Look, align_right};
use crate::time::format_time;

/// A ratio as a percentage, `-` for none.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

/// Seconds as milliseconds in three significant digits.
fn ms(seconds: f64) -> String {
    let ms = seconds * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// Requests per second, in a few digits (`-` for none).
fn rate(r: f64) -> String {
    if r == 0.0 {
        "-".into()
    } else if r >= 100.0 {
        format!("{r:.0}/s")
    } else if r >= 1.0 {
        format!("{r:.1}/s")
    } else {
        format!("{r:.3}/s")
    }
}

/// The edges (client, server, connection type, requests, failed, rate, server and
/// client p50/p90/p99) and the nodes (requests received, failure ratio, mean latency).
pub fn table(graph: &ServiceGraph, look: &Look) -> String {
    if graph.edges.is_empty() {
        return "no requests between services in the range".to_string();
    }
    let new_table = |header: Vec<&str>| super::table(header, look);
    let mut edges = new_table(vec![
        "client",
        "server",
        "type",
        "requests",
        "failed",
        "rate",
        "server ms p50/p90/p99",
        "client ms p50/p90/p99",
    ]);
    let latencies =
        |l: &traceql_exec::services::Latency| format!("{} {} {}", ms(l.p50), ms(l.p90), ms(l.p99));
    for e in &graph.edges {
        edges.add_row(vec![
            e.client.clone(),
            e.server.clone(),
            e.connection_type.clone(),
            e.requests.to_string(),
            percent(e.failed, e.requests),
            rate(e.rate),
            latencies(&e.server_latency),
            latencies(&e.client_latency),
        ]);
    }
    let mut nodes = new_table(vec![
        "service",
        "requests in",
        "failed",
        "rate",
        "avg latency",
    ]);
    for n in &graph.nodes {
        nodes.add_row(vec![
            n.name.clone(),
            n.requests.to_string(),
            percent(n.failed, n.requests),
            rate(n.rate),
            n.avg_latency.map_or("-".into(), short_seconds),
        ]);
    }
    align_right(&mut edges, &[3, 4, 5, 6, 7]);
    align_right(&mut nodes, &[1, 2, 3, 4]);
    format!(
        "{edges}\n{nodes}\n{} edges between {} nodes, requests from {} to {}",
        graph.edges.len(),
        graph.nodes.len(),
        format_time(graph.start_unix_nano),
        format_time(graph.end_unix_nano)
    )
}

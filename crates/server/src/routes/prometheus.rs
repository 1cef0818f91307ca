//! `/prometheus/api/v1/query`: the service-graph series Grafana's Service Graph tab
//! asks a Prometheus data source for — `traces_service_graph_request_total`,
//! `…_request_failed_total`, `…_request_server_seconds_{sum,count,bucket}` and
//! `…_request_client_seconds_{sum,count}`, labelled `client`, `server` and
//! `connection_type` — computed from stored spans over the query's range, so that a
//! Prometheus data source pointed at traceql draws the graph without a metrics
//! pipeline.
//!
//! The PromQL understood is what Grafana sends: an instant vector selector with label
//! matchers (`=`, `!=`, `=~`, `!~`), optionally inside `rate(…[range])` or
//! `increase(…[range])`, optionally inside `sum by (…)` or `group by (…)` (either order
//! of `by`), and Grafana's connection test `1+1`. Anything else is answered with
//! Prometheus's `bad_data` error saying it is not supported.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use regex::Regex;
use serde_json::{Value as Json, json};
use traceql_exec::services::SERVER_BUCKETS;
use traceql_exec::services::{ServiceGraph, ServicesOptions};

use crate::counters::Counters;
use crate::params::Params;
use crate::tenants::Tenant;

/// The prefix of the metric names.
const PREFIX: &str = "traces_service_graph_";

/// A Prometheus API error: `bad_data` with a reason, status 400.
fn bad_data(message: impl Into<String>) -> Response {
    let body = json!({"status": "error", "errorType": "bad_data", "error": message.into()});
    (StatusCode::BAD_REQUEST, super::json(&body)).into_response()
}

/// `GET /prometheus/api/v1/query` (`query`, `time`).
pub async fn query_get(
    Tenant(engine): Tenant,
    Extension(counters): Extension<Arc<Counters>>,
    Query(params): Query<Params>,
) -> Response {
    answer(&engine, &counters, &params).await
}

/// `POST /prometheus/api/v1/query` with a form body (what Grafana sends by default).
pub async fn query_post(
    Tenant(engine): Tenant,
    Extension(counters): Extension<Arc<Counters>>,
    Query(mut params): Query<Params>,
    Form(form): Form<Params>,
) -> Response {
    params.extend(form);
    answer(&engine, &counters, &params).await
}

/// `GET /prometheus/api/v1/status/buildinfo`, which Grafana reads to learn the
/// server's kind.
pub async fn buildinfo() -> Response {
    super::json(&json!({
        "status": "success",
        "data": {"version": "2.45.0", "revision": env!("CARGO_PKG_VERSION"), "branch": "traceql"}
    }))
}

async fn answer(engine: &traceql_exec::Engine, counters: &Counters, params: &Params) -> Response {
    let text = params.get("query").map_or("", |q| q.trim());
    let time = match params
        .get("time")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        Some(t) => match t.parse::<f64>() {
            Ok(t) => t,
            Err(_) => return bad_data(format!("invalid time `{t}`: expected unix seconds")),
        },
    };
    if text.replace(' ', "") == "1+1" {
        return super::json(&json!({
            "status": "success",
            "data": {"resultType": "scalar", "result": [time, "2"]}
        }));
    }
    let query = match parse(text) {
        Ok(query) => query,
        Err(e) => return bad_data(e),
    };
    let range = query.range.unwrap_or(300.0);
    let end = (time * 1e9) as u64;
    let start = end.saturating_sub((range * 1e9) as u64);
    let options = ServicesOptions {
        start_unix_nano: Some(start),
        end_unix_nano: Some(end),
        query: None,
    };
    let graph = match engine.services(&options).await {
        Ok((graph, stats)) => {
            counters.ran(&stats);
            graph
        }
        Err(e) => {
            let e = crate::ApiError::from(e);
            return (e.status, e.message).into_response();
        }
    };
    let series = match evaluate(&query, &graph, range) {
        Ok(series) => series,
        Err(e) => return bad_data(e),
    };
    let result: Vec<Json> = series
        .into_iter()
        .map(|(labels, value)| json!({"metric": labels, "value": [time, value.to_string()]}))
        .collect();
    super::json(&json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}

/// What a query asks for.
#[derive(Debug, PartialEq)]
struct PromQuery {
    /// `sum` or `group`, with the labels kept.
    aggregate: Option<(String, Vec<String>)>,
    /// `rate` or `increase`.
    function: Option<String>,
    /// The metric name.
    metric: String,
    /// Label matchers: label, operator, value.
    matchers: Vec<(String, String, String)>,
    /// The range of `rate` / `increase`, seconds.
    range: Option<f64>,
}

/// A Prometheus duration (`5m`, `1h30m`, `3600s`, `1d`) in seconds.
fn duration_seconds(text: &str) -> Result<f64, String> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            0.001
        } else {
            match c {
                's' => 1.0,
                'm' => 60.0,
                'h' => 3600.0,
                'd' => 86400.0,
                'w' => 604_800.0,
                'y' => 31_536_000.0,
                _ => return Err(format!("invalid duration `{text}`")),
            }
        };
        let n: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration `{text}`"))?;
        total += n * unit;
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any {
        return Err(format!("invalid duration `{text}`"));
    }
    Ok(total)
}

/// Splits `name (inner)` into `name` and `inner`, if `text` has that shape.
fn call<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(name)?.trim_start();
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.trim())
}

/// Where the `)` closing a `(` just before `text` is in `text`.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `by (a, b)` at the start of `text`: the labels and the rest.
fn by_clause(text: &str) -> Option<(Vec<String>, &str)> {
    let rest = text.trim_start().strip_prefix("by")?.trim_start();
    let rest = rest.strip_prefix('(')?;
    let close = rest.find(')')?;
    let labels = rest[..close]
        .split(',')
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    Some((labels, rest[close + 1..].trim_start()))
}

fn parse(text: &str) -> Result<PromQuery, String> {
    let unsupported = || {
        format!(
            "not supported yet: `{text}`; traceql answers the service-graph queries Grafana \
             sends (a selector of {PREFIX}* series, in rate() or increase(), in sum by or \
             group by)"
        )
    };
    let mut body = text.trim();
    let mut aggregate = None;
    for name in ["sum", "group"] {
        if let Some(rest) = body.strip_prefix(name) {
            // `sum by (…) (inner)` or `sum(inner) by (…)`.
            if let Some((labels, rest)) = by_clause(rest) {
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(unsupported)?;
                aggregate = Some((name.to_string(), labels));
                body = inner.trim();
            } else if let Some(open) = rest.trim_start().strip_prefix('(') {
                let close = closing(open).ok_or_else(unsupported)?;
                let labels = match by_clause(&open[close + 1..]) {
                    Some((labels, "")) => labels,
                    None if open[close + 1..].trim().is_empty() => Vec::new(),
                    _ => return Err(unsupported()),
                };
                aggregate = Some((name.to_string(), labels));
                body = open[..close].trim();
            }
            break;
        }
    }
    let mut function = None;
    let mut range = None;
    for name in ["rate", "increase"] {
        if let Some(inner) = call(body, name) {
            let open = inner.rfind('[').ok_or_else(unsupported)?;
            let duration = inner[open + 1..]
                .strip_suffix(']')
                .ok_or_else(unsupported)?;
            range = Some(duration_seconds(duration.trim())?);
            function = Some(name.to_string());
            body = inner[..open].trim();
            break;
        }
    }
    let (metric, matchers) = match body.find('{') {
        Some(open) => {
            let inside = body[open + 1..].strip_suffix('}').ok_or_else(unsupported)?;
            (
                body[..open].trim(),
                matchers(inside).ok_or_else(unsupported)?,
            )
        }
        None => (body, Vec::new()),
    };
    if !metric.starts_with(PREFIX) || metric.contains(|c: char| c.is_whitespace() || c == '(') {
        return Err(unsupported());
    }
    Ok(PromQuery {
        aggregate,
        function,
        metric: metric.to_string(),
        matchers,
        range,
    })
}

/// `a="x", b=~"y"`: label, operator, value.
fn matchers(text: &str) -> Option<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let op_at = rest.find(['=', '!'])?;
        let label = rest[..op_at].trim().to_string();
        let after = &rest[op_at..];
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| after.starts_with(op))?;
        let after = after[op.len()..].trim_start();
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let close = after[1..].find(quote)? + 1;
        out.push((label, op.to_string(), after[1..close].to_string()));
        rest = after[close + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Some(out)
}

/// A series' labels and its value.
type Sample = (BTreeMap<String, String>, f64);

/// The series of the query over `graph`, sorted by labels.
fn evaluate(query: &PromQuery, graph: &ServiceGraph, range: f64) -> Result<Vec<Sample>, String> {
    let name = &query.metric[PREFIX.len()..];
    let mut series: Vec<Sample> = Vec::new();
    for e in &graph.edges {
        let mut labels = BTreeMap::new();
        labels.insert("client".to_string(), e.client.clone());
        labels.insert("server".to_string(), e.server.clone());
        if !e.connection_type.is_empty() {
            labels.insert("connection_type".to_string(), e.connection_type.clone());
        }
        let n = e.requests as f64;
        let values: Vec<(Option<String>, f64)> = match name {
            "request_total" | "request_server_seconds_count" | "request_client_seconds_count" => {
                vec![(None, n)]
            }
            "request_failed_total" => vec![(None, e.failed as f64)],
            "request_server_seconds_sum" => vec![(None, e.server_latency.avg * n)],
            "request_client_seconds_sum" => vec![(None, e.client_latency.avg * n)],
            "request_server_seconds_bucket" => SERVER_BUCKETS
                .iter()
                .zip(&e.server_buckets)
                .map(|(b, c)| (Some(b.to_string()), *c as f64))
                .chain([(Some("+Inf".to_string()), n)])
                .collect(),
            _ => {
                return Err(format!(
                    "not supported yet: the series `{}`; traceql computes request_total, \
                     request_failed_total, request_server_seconds_{{sum,count,bucket}} and \
                     request_client_seconds_{{sum,count}}",
                    query.metric
                ));
            }
        };
        for (le, value) in values {
            let mut labels = labels.clone();
            if let Some(le) = le {
                labels.insert("le".to_string(), le);
            }
            series.push((labels, value));
        }
    }
    let mut kept = Vec::new();
    for (labels, value) in series {
        let mut keep = true;
        for (label, op, want) in &query.matchers {
            if label == "__name__" {
                continue;
            }
            let have = labels.get(label).map_or("", String::as_str);
            keep &= match op.as_str() {
                "=" => have == want,
                "!=" => have != want,
                "=~" | "!~" => {
                    let re = Regex::new(&format!("^(?:{want})$"))
                        .map_err(|e| format!("invalid regular expression `{want}`: {e}"))?;
                    re.is_match(have) == (op == "=~")
                }
                _ => false,
            };
        }
        if keep {
            let value = match query.function.as_deref() {
                Some("rate") => value / range.max(1e-9),
                _ => value,
            };
            kept.push((labels, value));
        }
    }
    let Some((kind, by)) = &query.aggregate else {
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        return Ok(kept);
    };
    let mut grouped: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
    for (labels, value) in kept {
        let key: BTreeMap<String, String> =
            labels.into_iter().filter(|(l, _)| by.contains(l)).collect();
        let slot = grouped.entry(key).or_insert(0.0);
        *slot = if kind == "group" { 1.0 } else { *slot + value };
    }
    Ok(grouped.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafanas_service_graph_queries_parse() {
        let q = parse(
            "sum by (client, server) (rate(traces_service_graph_request_total{server=~\"a|b\"}[3600s]))",
        )
        .unwrap();
        assert_eq!(
            q.aggregate,
            Some(("sum".into(), vec!["client".into(), "server".into()]))
        );
        assert_eq!(q.function.as_deref(), Some("rate"));
        assert_eq!(q.metric, "traces_service_graph_request_total");
        assert_eq!(
            q.matchers,
            vec![("server".into(), "=~".into(), "a|b".into())]
        );
        assert_eq!(q.range, Some(3600.0));
        let q = parse(
            "group by (client, connection_type, server) (traces_service_graph_request_total)",
        )
        .unwrap();
        assert_eq!(q.aggregate.unwrap().1.len(), 3);
        assert_eq!(q.function, None);
        let q =
            parse("sum(increase(traces_service_graph_request_failed_total[1h30m])) by (server)")
                .unwrap();
        assert_eq!(q.range, Some(5400.0));
        assert!(parse("up").unwrap_err().contains("not supported yet"));
        assert!(parse("histogram_quantile(0.9, x)").is_err());
        assert_eq!(duration_seconds("250ms").unwrap(), 0.25);
        assert!(duration_seconds("5").is_err());
    }
}

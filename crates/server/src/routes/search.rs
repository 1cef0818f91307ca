//! `GET /api/search`: a TraceQL search (`q`), or Tempo's legacy search (`tags` in
//! logfmt, `minDuration`, `maxDuration`) translated to TraceQL, answered as Tempo's
//! `SearchResponse` JSON.

use std::sync::Arc;

use axum::Extension;
use axum::extract::Query;
use axum::response::Response;
use serde::ser::{Serialize, SerializeMap, Serializer};
use traceql_exec::search::{SearchMetrics, SpanSet, TraceResult};
use traceql_exec::{Order, SearchOptions};

use crate::counters::Counters;
use crate::error::ApiError;
use crate::params::{self, Params};
use crate::tenants::Tenant;

/// Tempo's defaults when a request names no limit or spans per spanset.
const DEFAULT_LIMIT: usize = 20;
const DEFAULT_SPSS: usize = 3;

/// `GET /api/search`.
pub async fn search(
    Tenant(engine): Tenant,
    Extension(counters): Extension<Arc<Counters>>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let range = params::range(&params)?;
    let options = SearchOptions {
        limit: params::count(&params, "limit", DEFAULT_LIMIT)?,
        order: Order::Newest,
        spans_per_spanset: params::count(&params, "spss", DEFAULT_SPSS)?,
        start_unix_nano: range.start,
        end_unix_nano: range.end,
    };
    let q = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
    let (query, legacy) = match q {
        Some(_) if params.contains_key("tags") => {
            return Err(ApiError::bad_request(
                "invalid request: q and tags cannot both be given",
            ));
        }
        Some(q) => (q.to_string(), false),
        None => (legacy_query(&params)?, true),
    };
    let (results, _) = engine.search_results(&query, &options).await?;
    counters.scanned(
        results.metrics.inspected_bytes,
        results.metrics.inspected_spans,
    );
    let traces: Vec<TraceResult> = results.traces().collect();
    Ok(super::json(&TempoSearch {
        traces: &traces,
        metrics: &results.metrics,
        legacy,
    }))
}

/// The TraceQL of a legacy search: each `key=value` of `tags` (logfmt) as an unscoped
/// attribute equal to the value (as a string, or as a number where it reads as one),
/// `minDuration` and `maxDuration` on the trace's duration.
fn legacy_query(params: &Params) -> Result<String, ApiError> {
    let mut conditions = Vec::new();
    for (key, value) in logfmt(params.get("tags").map_or("", String::as_str))? {
        let text = traceql_string(&value);
        let condition = if value.parse::<i64>().is_ok() || value.parse::<f64>().is_ok() {
            format!("(.{key} = {text} || .{key} = {value})")
        } else {
            format!(".{key} = {text}")
        };
        conditions.push(condition);
    }
    for (name, op) in [("minDuration", ">="), ("maxDuration", "<=")] {
        if let Some(nanos) = params::duration_nanos(params, name)? {
            conditions.push(format!("traceDuration {op} {nanos}ns"));
        }
    }
    Ok(if conditions.is_empty() {
        "{ }".into()
    } else {
        format!("{{ {} }}", conditions.join(" && "))
    })
}

/// `text` as a TraceQL string literal.
fn traceql_string(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// The `key=value` pairs of a logfmt line (values may be double-quoted).
fn logfmt(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("invalid tags `{text}`: {why}"));
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| invalid("expected key=value"))?;
        let key = &rest[..eq];
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        {
            return Err(invalid("a key holds letters, digits, `.`, `_`, `-` or `/`"));
        }
        rest = &rest[eq + 1..];
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| invalid("unclosed quote"))?;
            rest = &quoted[end + 1..];
            quoted[..end].to_string()
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let value = rest[..end].to_string();
            rest = &rest[end..];
            value
        };
        pairs.push((key.to_string(), value));
        rest = rest.trim_start();
    }
    Ok(pairs)
}

/// Tempo's `SearchResponse` JSON: each trace with its spansets as `spanSets` and the
/// first also as the older `spanSet` (Grafana's table reads that one when present);
/// a legacy search's traces without spansets.
struct TempoSearch<'a> {
    traces: &'a [TraceResult],
    metrics: &'a SearchMetrics,
    legacy: bool,
}

impl Serialize for TempoSearch<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let traces: Vec<TempoTrace<'_>> = self
            .traces
            .iter()
            .map(|t| TempoTrace {
                trace: t,
                legacy: self.legacy,
            })
            .collect();
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("traces", &traces)?;
        map.serialize_entry("metrics", self.metrics)?;
        map.end()
    }
}

struct TempoTrace<'a> {
    trace: &'a TraceResult,
    legacy: bool,
}

impl Serialize for TempoTrace<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.trace;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("traceID", &t.trace_id)?;
        if !t.root_service_name.is_empty() {
            map.serialize_entry("rootServiceName", &t.root_service_name)?;
        }
        if !t.root_trace_name.is_empty() {
            map.serialize_entry("rootTraceName", &t.root_trace_name)?;
        }
        map.serialize_entry("startTimeUnixNano", &t.start_time_unix_nano.to_string())?;
        map.serialize_entry("durationMs", &t.duration_ms)?;
        if !self.legacy {
            let first: Option<&SpanSet> = t.span_sets.first();
            if let Some(first) = first {
                map.serialize_entry("spanSet", first)?;
            }
            map.serialize_entry("spanSets", &t.span_sets)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::params;

    #[test]
    fn legacy_searches_become_traceql_that_parses() {
        let cases = [
            (vec![], "{ }"),
            (
                vec![("tags", "service.name=payment http.status_code=502")],
                r#"{ .service.name = "payment" && (.http.status_code = "502" || .http.status_code = 502) }"#,
            ),
        ];
        for (pairs, want) in cases {
            let q = legacy_query(&params(&pairs)).unwrap();
            assert_eq!(q, want);
            traceql_parser::parse_and_validate(&q).unwrap();
        }
        let q = legacy_query(&params(&[("maxDuration", "2s")])).unwrap();
        assert_eq!(q, "{ traceDuration <= 2000000000ns }");
        traceql_parser::parse_and_validate(&q).unwrap();
        assert!(legacy_query(&params(&[("tags", "novalue")])).is_err());
        assert!(legacy_query(&params(&[("tags", "a=\"open")])).is_err());
        assert!(legacy_query(&params(&[("tags", "a}=1")])).is_err());
    }
}

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
use traceql_parser::ast::Literal;

use crate::counters::Counters;
use crate::error::ApiError;
use crate::params::{self, Params};
use crate::tenants::Tenant;

/// Tempo's defaults when a request names no limit or spans per spanset.
pub(crate) const DEFAULT_LIMIT: usize = 20;
pub(crate) const DEFAULT_SPSS: usize = 3;

/// A search request: its TraceQL (translated from a legacy search), its options, and
/// whether it was a legacy search (answered without spansets).
pub(crate) struct SearchRequest {
    /// The TraceQL query.
    pub query: String,
    /// Limit, spans per spanset and range.
    pub options: SearchOptions,
    /// Whether the request was a legacy search.
    pub legacy: bool,
}

impl SearchRequest {
    /// The search `params` ask for: `q`, or the legacy `tags`, `minDuration` and
    /// `maxDuration`; `limit`, `spss`, `start` and `end`.
    pub(crate) fn of(params: &Params) -> Result<SearchRequest, ApiError> {
        let range = params::range(params)?;
        let options = SearchOptions {
            limit: params::count(params, "limit", DEFAULT_LIMIT)?,
            order: Order::Newest,
            spans_per_spanset: params::count(params, "spss", DEFAULT_SPSS)?,
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
            None => {
                let tags = logfmt(params.get("tags").map_or("", String::as_str))?;
                let min = params::duration_nanos(params, "minDuration")?;
                let max = params::duration_nanos(params, "maxDuration")?;
                (legacy_query(&tags, min, max)?, true)
            }
        };
        Ok(SearchRequest {
            query,
            options,
            legacy,
        })
    }
}

/// `GET /api/search`.
pub async fn search(
    Tenant(engine): Tenant,
    Extension(counters): Extension<Arc<Counters>>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let request = SearchRequest::of(&params)?;
    let (results, stats) = engine
        .search_results(&request.query, &request.options)
        .await?;
    counters.ran(&stats);
    let traces: Vec<TraceResult> = results.traces().collect();
    Ok(super::json(&TempoSearch {
        traces: &traces,
        metrics: &results.metrics,
        legacy: request.legacy,
    }))
}

/// The TraceQL of a legacy search: each `key=value` of `tags` as an unscoped
/// attribute (its name quoted) equal to the value (as a string, or as a number where it reads as one),
/// and the trace's duration at least `min` and at most `max` nanoseconds.
pub(crate) fn legacy_query(
    tags: &[(String, String)],
    min: Option<u64>,
    max: Option<u64>,
) -> Result<String, ApiError> {
    let mut conditions = Vec::new();
    for (key, value) in tags {
        if key.is_empty() {
            return Err(ApiError::bad_request("invalid tags: a key is empty"));
        }
        // Quoted, so that any key is one attribute name (`."http.status_code"` is
        // `.http.status_code`).
        let key = format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""));
        let text = Literal::String(value.clone());
        let number = match value.parse::<i64>() {
            Ok(n) => Some(Literal::Int(n)),
            Err(_) => value
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Literal::Float),
        };
        let condition = match number {
            Some(number) => format!("(.{key} = {text} || .{key} = {number})"),
            None => format!(".{key} = {text}"),
        };
        conditions.push(condition);
    }
    for (nanos, op) in [(min, ">="), (max, "<=")] {
        if let Some(nanos) = nanos {
            conditions.push(format!("traceDuration {op} {nanos}ns"));
        }
    }
    Ok(if conditions.is_empty() {
        "{ }".into()
    } else {
        format!("{{ {} }}", conditions.join(" && "))
    })
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
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(invalid("expected key=value"));
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
    use proptest::prelude::*;

    #[test]
    fn legacy_searches_become_traceql_that_parses() {
        let legacy = |pairs: &[(&str, &str)]| {
            SearchRequest::of(&params(pairs)).map(|r| {
                assert!(r.legacy);
                r.query
            })
        };
        let cases = [
            (vec![], "{ }"),
            (
                vec![("tags", "service.name=payment http.status_code=502")],
                r#"{ ."service.name" = "payment" && (."http.status_code" = "502" || ."http.status_code" = 502) }"#,
            ),
            (
                vec![("tags", r#"a="two words""#), ("minDuration", "1ms")],
                r#"{ ."a" = "two words" && traceDuration >= 1000000ns }"#,
            ),
        ];
        for (pairs, want) in cases {
            let q = legacy(&pairs).unwrap();
            assert_eq!(q, want);
            traceql_parser::parse_and_validate(&q).unwrap();
        }
        let q = legacy(&[("maxDuration", "2s")]).unwrap();
        assert_eq!(q, "{ traceDuration <= 2000000000ns }");
        traceql_parser::parse_and_validate(&q).unwrap();
        assert!(legacy(&[("tags", "novalue")]).is_err());
        assert!(legacy(&[("tags", "a=\"open")]).is_err());
        // Keys of any characters stay one quoted name.
        for key in ["a}", "-", "0a", "a\"b", "a\\b"] {
            let q = legacy(&[("tags", &format!("{key}=1"))]).unwrap();
            assert!(traceql_parser::parse_and_validate(&q).is_ok(), "{q}");
        }
        assert!(legacy(&[("tags", "a=1"), ("q", "{ }")]).is_err());
        // Quotes and backslashes in a value stay inside the TraceQL string.
        let q = legacy_query(&[("k".into(), r#"x" } | { "#.into())], None, None).unwrap();
        assert!(traceql_parser::parse_and_validate(&q).is_ok(), "{q}");
    }

    /// A value for a search parameter: anything, or something close to what the
    /// parameter takes.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9]{1,12}",
            "-?[0-9.]{0,6}(e[0-9]{1,3})?(ns|us|µs|ms|s|m|h){0,2}",
            "(inf|NaN|-0|1e999|0x10)",
            r#"([a-z._/-]{1,6}=("[^"]{0,6}"|[^ ]{0,6}) ?){0,3}"#,
        ]
    }

    proptest! {
        /// Whatever a request's parameters hold, reading them gives a search or a 400,
        /// never a panic; a legacy search's TraceQL always parses.
        #[test]
        fn any_search_parameters_give_a_search_or_a_400(
            pairs in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("q"), Just("tags"), Just("limit"), Just("spss"), Just("start"),
                        Just("end"), Just("minDuration"), Just("maxDuration"),
                    ],
                    value(),
                ),
                0..6,
            )
        ) {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match SearchRequest::of(&params(&pairs)) {
                Ok(request) if request.legacy => {
                    let parsed = traceql_parser::parse_and_validate(&request.query);
                    prop_assert!(parsed.is_ok(), "{} from {:?}", request.query, pairs);
                }
                Ok(request) => prop_assert!(request.options.limit > 0),
                Err(e) => prop_assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST),
            }
        }
    }
}

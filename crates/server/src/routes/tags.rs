//! Tag names and tag values, for Grafana's autocomplete and query builder:
//! `GET /api/v2/search/tags` (`scope`), `GET /api/v2/search/tag/<tag>/values` (`q`,
//! `limit`) and their v1 forms.
//!
//! Names come from the blocks' facts (their typed columns and recorded keys) and the
//! language's intrinsics. Values are exact: they are the `by` labels of
//! `<q> | count_over_time() by (<tag>)` over the range, so a `q` filter narrows them
//! as a search would, and each keeps its type.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query};
use axum::response::Response;
use serde_json::{Value as Json, json};
use traceql_exec::ParsedQuery;
use traceql_exec::metrics::MetricsOptions;
use traceql_format::value::Value;
use traceql_parser::ast::{Intrinsic, IntrinsicScope};

use crate::counters::Counters;
use crate::error::ApiError;
use crate::params::{self, Params, Range};
use crate::tenants::Tenant;
use traceql_exec::Engine;

/// The attribute scopes Tempo lists, in its order, then `intrinsic`.
const SCOPES: [&str; 5] = ["span", "resource", "event", "instrumentation", "link"];

/// Tempo's default and largest number of tag values.
const DEFAULT_VALUES: usize = 5_000;

/// The intrinsics as tags: the unscoped spellings, then every `scope:name`.
fn intrinsic_tags() -> Vec<String> {
    let internal = [
        "nestedSetLeft",
        "nestedSetRight",
        "nestedSetParent",
        "parent",
    ];
    let mut tags: BTreeSet<String> = Intrinsic::UNSCOPED
        .iter()
        .map(|(w, _)| w.to_string())
        .filter(|w| !internal.contains(&w.as_str()))
        .collect();
    for scope in IntrinsicScope::ALL {
        for (word, _) in scope.intrinsics() {
            tags.insert(format!("{}:{word}", scope.as_str()));
        }
    }
    tags.into_iter().collect()
}

/// The attribute keys of each scope in the store, sorted.
fn keys_by_scope(engine: &Engine) -> Vec<(&'static str, Vec<String>)> {
    let names = engine.attribute_names();
    SCOPES
        .iter()
        .map(|scope| {
            let prefix = format!("{scope}.");
            let keys: BTreeSet<String> = names
                .iter()
                .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
                .collect();
            (*scope, keys.into_iter().collect())
        })
        .collect()
}

/// The tag names of each scope the store has (`wanted` picks one: a scope, `intrinsic`
/// or `all`), Tempo's scopes first, then `intrinsic`.
pub(crate) fn scopes(
    engine: &Engine,
    wanted: Option<&str>,
) -> Result<Vec<(&'static str, Vec<String>)>, ApiError> {
    let wanted = wanted
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "all");
    if let Some(scope) = wanted
        && scope != "intrinsic"
        && !SCOPES.contains(&scope)
    {
        return Err(ApiError::bad_request(format!(
            "invalid scope `{scope}`: expected one of {}, intrinsic or all",
            SCOPES.join(", ")
        )));
    }
    let mut scopes: Vec<(&'static str, Vec<String>)> = keys_by_scope(engine)
        .into_iter()
        .filter(|(name, keys)| !keys.is_empty() && wanted.is_none_or(|w| w == *name))
        .collect();
    if wanted.is_none_or(|w| w == "intrinsic") {
        scopes.push(("intrinsic", intrinsic_tags()));
    }
    Ok(scopes)
}

/// Every attribute key, whatever its scope (Tempo's v1 tag names).
pub(crate) fn tag_names(engine: &Engine) -> Vec<String> {
    let names: BTreeSet<String> = keys_by_scope(engine)
        .into_iter()
        .flat_map(|(_, keys)| keys)
        .collect();
    names.into_iter().collect()
}

/// `GET /api/v2/search/tags`: tag names by scope (`scope` picks one).
pub async fn tags_v2(
    Tenant(engine): Tenant,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    params::range(&params)?;
    let scopes: Vec<Json> = scopes(&engine, params.get("scope").map(String::as_str))?
        .into_iter()
        .map(|(name, keys)| json!({ "name": name, "tags": keys }))
        .collect();
    Ok(super::json(&json!({ "scopes": scopes, "metrics": {} })))
}

/// `GET /api/search/tags`: every attribute key, whatever its scope.
pub async fn tags_v1(
    Tenant(engine): Tenant,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    params::range(&params)?;
    Ok(super::json(&json!({ "tagNames": tag_names(&engine) })))
}

/// The distinct values of `tag` over `range`, at most `limit`, among spans matching
/// `filter` (empty: every span), with the bytes read; what the query read is counted
/// in `counters`.
pub(crate) async fn values(
    engine: &Engine,
    counters: &Counters,
    tag: &str,
    filter: &str,
    range: Range,
    limit: Option<usize>,
) -> Result<(Vec<Value>, u64), ApiError> {
    let filter = Some(filter.trim())
        .filter(|q| !q.is_empty())
        .unwrap_or("{ }");
    // The tag alone must be a field: `tag` is spliced into a query, so a tag that
    // closes `by (` and adds stages of its own is refused here.
    if ParsedQuery::parse(&format!("{{ }} | select({tag})")).is_err() {
        return Err(ApiError::bad_request(format!(
            "invalid tag `{tag}`: not a TraceQL field"
        )));
    }
    let query =
        ParsedQuery::parse(&format!("{filter} | count_over_time() by ({tag})")).map_err(|e| {
            match ParsedQuery::parse(filter) {
                Err(q) => ApiError::from(q),
                Ok(_) => ApiError::from(e),
            }
        })?;
    let options = MetricsOptions {
        start_unix_nano: range.start,
        end_unix_nano: range.end,
        step_nano: None,
        instant: true,
    };
    let (response, stats) = engine.metrics_parsed(&query, &options).await?;
    let mut values: Vec<Value> = response
        .series
        .into_iter()
        .filter_map(|s| s.labels.into_iter().next().and_then(|(_, v)| v))
        .collect();
    values.sort_by(|a, b| a.total_cmp(b));
    values.dedup();
    values.truncate(limit.unwrap_or(DEFAULT_VALUES));
    counters.ran(&stats);
    Ok((values, stats.bytes_scanned))
}

/// The values of the tag in a request's path, with the request's `q`, range and
/// `limit`.
async fn values_of(
    engine: &Engine,
    counters: &Counters,
    tag: &str,
    params: &Params,
) -> Result<(Vec<Value>, u64), ApiError> {
    let range = params::range(params)?;
    let limit = params::count(params, "limit", DEFAULT_VALUES)?;
    let filter = params.get("q").map_or("", String::as_str);
    values(engine, counters, tag, filter, range, Some(limit)).await
}

/// The type Tempo gives a value of `tag`: status and kind are keywords, durations are
/// durations, attributes by their own type.
pub(crate) fn value_type(tag: &str, value: &Value) -> &'static str {
    let intrinsic = tag.split_once(':').map_or(tag, |(_, name)| name);
    match (intrinsic, value) {
        ("status" | "kind", _) => "keyword",
        ("duration" | "traceDuration" | "timeSinceStart", Value::Str(_)) => "duration",
        (_, Value::Int(_) | Value::IntArray(_)) => "int",
        (_, Value::Float(_) | Value::FloatArray(_)) => "float",
        (_, Value::Bool(_) | Value::BoolArray(_)) => "bool",
        _ => "string",
    }
}

/// A v1 tag as a TraceQL field: a bare key (`service.name`) is looked up in every
/// scope, as v1 names carry none.
pub(crate) fn v1_tag(tag: String) -> String {
    let scoped = tag.contains(':')
        || tag.starts_with('.')
        || SCOPES.iter().any(|s| tag.starts_with(&format!("{s}.")))
        || Intrinsic::from_unscoped(&tag).is_some();
    if scoped { tag } else { format!(".{tag}") }
}

/// `GET /api/v2/search/tag/<tag>/values`: typed values.
pub async fn values_v2(
    Tenant(engine): Tenant,
    Extension(counters): Extension<Arc<Counters>>,
    Path(tag): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let (values, bytes) = values_of(&engine, &counters, &tag, &params).await?;
    let typed: Vec<Json> = values
        .iter()
        .map(|v| json!({ "type": value_type(&tag, v), "value": v.to_string() }))
        .collect();
    Ok(super::json(&json!({
        "tagValues": typed,
        "metrics": { "inspectedBytes": bytes.to_string() },
    })))
}

/// `GET /api/search/tag/<tag>/values`: values as text.
pub async fn values_v1(
    Tenant(engine): Tenant,
    Extension(counters): Extension<Arc<Counters>>,
    Path(tag): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let (values, bytes) = values_of(&engine, &counters, &v1_tag(tag), &params).await?;
    let texts: Vec<String> = values.iter().map(Value::to_string).collect();
    Ok(super::json(&json!({
        "tagValues": texts,
        "metrics": { "inspectedBytes": bytes.to_string() },
    })))
}

//! Tempo's search conformance cases: every `match` and `no_match` case of
//! `fixture_cases.yaml` against `fixture_trace.otlp.json`, and `engine_cases.yaml`.

use std::collections::BTreeSet;

use serde::Deserialize;
use traceql_exec::SearchOptions;
use traceql_exec::otlp::read_file;

use traceql_testkit::require_shared;

use crate::common::engine_with;

#[derive(Deserialize)]
struct FixtureCases {
    trace_id: String,
    #[serde(rename = "match")]
    matches: Vec<Case>,
    no_match: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    query: String,
    #[serde(default)]
    spans: Vec<String>,
    start_unix_nano: Option<u64>,
    end_unix_nano: Option<u64>,
}

fn options(case: &Case) -> SearchOptions {
    SearchOptions {
        limit: 20,
        spans_per_spanset: 1000,
        start_unix_nano: case.start_unix_nano,
        end_unix_nano: case.end_unix_nano,
        ..SearchOptions::default()
    }
}

#[tokio::test]
async fn fixture_cases_match_tempo() {
    let cases_file = require_shared!(conformance("fixture_cases.yaml"));
    let trace_file = require_shared!(conformance("fixture_trace.otlp.json"));
    let cases: FixtureCases =
        serde_norway::from_str(&std::fs::read_to_string(cases_file).unwrap()).unwrap();
    let spans = read_file(&trace_file, false).unwrap().spans;
    let engine = engine_with(spans).await;
    let mut failures = Vec::new();
    for case in &cases.matches {
        match engine.search(&case.query, &options(case)).await {
            Err(e) => failures.push(format!("{}: `{}` failed: {e}", case.name, case.query)),
            Ok(response) => {
                let Some(trace) = response
                    .traces
                    .iter()
                    .find(|t| t.trace_id == cases.trace_id)
                else {
                    failures.push(format!(
                        "{}: `{}` did not return the trace",
                        case.name, case.query
                    ));
                    continue;
                };
                let got: BTreeSet<&str> = trace
                    .span_sets
                    .iter()
                    .flat_map(|s| s.spans.iter().map(|sp| sp.span_id.as_str()))
                    .collect();
                let want: BTreeSet<&str> = case.spans.iter().map(String::as_str).collect();
                let matched: u64 = trace.span_sets.iter().map(|s| s.matched).sum();
                if got != want || matched != want.len() as u64 {
                    failures.push(format!(
                        "{}: `{}` returned spans {got:?} (matched {matched}), expected {want:?}",
                        case.name, case.query
                    ));
                }
            }
        }
    }
    for case in &cases.no_match {
        match engine.search(&case.query, &options(case)).await {
            Err(e) => failures.push(format!("{}: `{}` failed: {e}", case.name, case.query)),
            Ok(response) => {
                if response.traces.iter().any(|t| t.trace_id == cases.trace_id) {
                    failures.push(format!(
                        "{}: `{}` returned the trace",
                        case.name, case.query
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.matches.len() + cases.no_match.len(),
        failures.join("\n")
    );
}

#[derive(Deserialize)]
struct EngineCases {
    fixture: String,
    cases: Vec<EngineCase>,
}

#[derive(Deserialize)]
struct EngineCase {
    query: String,
    spans_per_spanset: usize,
    returned_traces: Vec<ReturnedTrace>,
    not_returned_traces: Vec<String>,
}

#[derive(Deserialize)]
struct ReturnedTrace {
    trace_id: String,
    matched: u64,
    spans: Vec<ReturnedSpan>,
}

#[derive(Deserialize)]
struct ReturnedSpan {
    span_id: String,
    start_time_unix_nano: String,
    duration_nanos: String,
    attributes: std::collections::BTreeMap<String, String>,
}

#[tokio::test]
async fn engine_cases_match_tempo() {
    let cases_file = require_shared!(conformance("engine_cases.yaml"));
    let cases: EngineCases =
        serde_norway::from_str(&std::fs::read_to_string(cases_file).unwrap()).unwrap();
    let fixture = require_shared!(conformance(&cases.fixture));
    let spans = read_file(&fixture, false).unwrap().spans;
    let engine = engine_with(spans).await;
    for case in &cases.cases {
        let options = SearchOptions {
            spans_per_spanset: case.spans_per_spanset,
            ..SearchOptions::default()
        };
        let response = engine.search(&case.query, &options).await.unwrap();
        for want in &case.returned_traces {
            let trace = response
                .traces
                .iter()
                .find(|t| t.trace_id == want.trace_id)
                .unwrap_or_else(|| {
                    panic!("`{}` did not return trace {}", case.query, want.trace_id)
                });
            assert_eq!(trace.span_sets.len(), 1);
            let set = &trace.span_sets[0];
            assert_eq!(set.matched, want.matched, "matched of `{}`", case.query);
            assert_eq!(set.spans.len(), want.spans.len());
            for (got, want) in set.spans.iter().zip(&want.spans) {
                assert_eq!(got.span_id, want.span_id);
                assert_eq!(
                    got.start_time_unix_nano.to_string(),
                    want.start_time_unix_nano
                );
                assert_eq!(got.duration_nanos.to_string(), want.duration_nanos);
                for (key, value) in &want.attributes {
                    let attr = got
                        .attributes
                        .iter()
                        .find(|a| &a.key == key)
                        .unwrap_or_else(|| panic!("span {} lacks attribute {key}", got.span_id));
                    assert_eq!(
                        serde_json::json!(attr.value),
                        serde_json::json!({ "stringValue": value })
                    );
                }
            }
        }
        for id in &case.not_returned_traces {
            assert!(
                response.traces.iter().all(|t| &t.trace_id != id),
                "`{}` returned trace {id}",
                case.query
            );
        }
    }
}

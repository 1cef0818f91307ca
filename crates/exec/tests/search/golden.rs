//! The golden corpus, `testdata/golden/*.slt`, in a sqllogictest-like format:
//!
//! ```text
//! # a comment
//! query [limit=N] [spss=N]
//! { status = error } | count() > 2
//! ----
//! <the expected results, as `render` prints them>
//!
//! metrics [step=DURATION] [instant]
//! { } | rate() by (resource.service.name)
//! ----
//! <one line per series: labels, then the value of each bucket>
//!
//! explain
//! { kind = server } >> { status = error }
//! ----
//! <the optimised logical plan>
//! ```
//!
//! Queries run against the bundled demo store (`testdata/demo`). An expected block may
//! also be an error, printed as `error: <code> at <line>:<column>: …` for query errors.
//! Run with `TRACEQL_GOLDEN=overwrite` to rewrite the files with what the engine now
//! returns, then review the diff. Every query that parses must also print in canonical
//! form, parse back to the same tree and give the same answer in that form.

use std::fmt::Write;
use std::path::PathBuf;

use traceql_exec::metrics::{MetricsOptions, MetricsResponse};
use traceql_exec::{Engine, EngineError, SearchOptions, SearchResponse};

use crate::common::repo;

#[derive(Clone)]
struct Record {
    header: String,
    query: String,
    expected: String,
}

fn parse_file(text: &str) -> (Vec<String>, Vec<Record>) {
    let mut preamble = Vec::new();
    let mut records = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if !["query", "metrics", "explain"]
            .iter()
            .any(|kind| line.split_whitespace().next() == Some(kind))
        {
            if records.is_empty() {
                preamble.push(line.to_string());
            }
            continue;
        }
        let header = line.to_string();
        let mut query = Vec::new();
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            query.push(l);
        }
        let mut expected = Vec::new();
        while let Some(l) = lines.peek() {
            if l.is_empty() {
                lines.next();
                break;
            }
            expected.push(lines.next().unwrap_or_default());
        }
        records.push(Record {
            header,
            query: query.join("\n"),
            expected: expected.join("\n"),
        });
    }
    (preamble, records)
}

fn options(header: &str) -> SearchOptions {
    let mut options = SearchOptions::default();
    for word in header.split_whitespace().skip(1) {
        match word.split_once('=') {
            Some(("limit", n)) => options.limit = n.parse().expect("limit"),
            Some(("spss", n)) => options.spans_per_spanset = n.parse().expect("spss"),
            _ => panic!("unknown option `{word}` in `{header}`"),
        }
    }
    options
}

fn metrics_options(header: &str) -> MetricsOptions {
    let mut options = MetricsOptions::default();
    for word in header.split_whitespace().skip(1) {
        match word.split_once('=') {
            Some(("step", d)) => {
                let step = traceql_parser::parse_duration(d).expect("step is a duration");
                options.step_nano = Some(step as u64);
            }
            None if word == "instant" => options.instant = true,
            _ => panic!("unknown option `{word}` in `{header}`"),
        }
    }
    options
}

/// An error as one line: query errors with their code and position.
fn render_error(e: &EngineError) -> String {
    match e {
        EngineError::Query { source, error } => {
            let (line, column) = error.line_col(source);
            format!(
                "error: {} at {line}:{column}: {}",
                error.kind.code(),
                error.message
            )
        }
        other => format!("error: {other}"),
    }
}

/// Runs one record and renders what it returns.
async fn run(engine: &Engine, record: &Record) -> String {
    match record.header.split_whitespace().next() {
        Some("query") => render(&engine.search(&record.query, &options(&record.header)).await),
        Some("metrics") => render_metrics(
            &engine
                .metrics(&record.query, &metrics_options(&record.header))
                .await
                .map(|(response, _)| response),
        ),
        _ => match engine.explain(&record.query).await {
            Ok(explanation) => explanation.logical,
            Err(e) => render_error(&e),
        },
    }
}

/// Series as text: labels, then each bucket's value (`-` for none).
fn render_metrics(result: &Result<MetricsResponse, EngineError>) -> String {
    let response = match result {
        Ok(r) => r,
        Err(e) => return render_error(e),
    };
    if response.series.is_empty() {
        return "(no series)".into();
    }
    let mut out = format!("timestamps {:?}", response.timestamps());
    for series in &response.series {
        let labels: Vec<String> = series
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={}", label_json(v)))
            .collect();
        let values: Vec<String> = series
            .values
            .iter()
            .map(|v| {
                if v.is_nan() {
                    "-".into()
                } else {
                    format!("{v}")
                }
            })
            .collect();
        let _ = write!(out, "\n{{{}}} {}", labels.join(", "), values.join(" "));
    }
    out
}

/// The results as compact, reviewable text.
fn render(result: &Result<SearchResponse, EngineError>) -> String {
    let response = match result {
        Ok(r) => r,
        Err(e) => return render_error(e),
    };
    let mut out = String::new();
    if response.traces.is_empty() {
        out.push_str("(no traces)");
    }
    for t in &response.traces {
        let _ = writeln!(
            out,
            "trace {} root={}:{} start={} duration={}ms",
            t.trace_id,
            t.root_service_name,
            t.root_trace_name,
            t.start_time_unix_nano,
            t.duration_ms
        );
        for s in &t.span_sets {
            let attrs: Vec<String> = s
                .attributes
                .iter()
                .map(|a| format!("{}={}", a.key, serde_json::json!(a.value)))
                .collect();
            let _ =
                writeln!(out, "  spanset matched={} {}", s.matched, attrs.join(" ")).map(|_| ());
            for span in &s.spans {
                let attrs: Vec<String> = span
                    .attributes
                    .iter()
                    .map(|a| format!("{}={}", a.key, serde_json::json!(a.value)))
                    .collect();
                let _ = writeln!(
                    out,
                    "    {} {:?} {}ns {}",
                    span.span_id,
                    span.name,
                    span.duration_nanos,
                    attrs.join(" ")
                );
            }
        }
    }
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn files() -> Vec<PathBuf> {
    let dir = repo().join("testdata/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("golden directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn golden_files_match() {
    let overwrite = std::env::var("TRACEQL_GOLDEN").is_ok_and(|v| v == "overwrite");
    let engine = Engine::open(repo().join("testdata/demo").to_str().expect("utf-8 path"))
        .await
        .expect("demo store");
    let mut mismatches = Vec::new();
    let files = files();
    assert!(!files.is_empty(), "no golden files");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("golden file");
        let (preamble, records) = parse_file(&text);
        assert!(!records.is_empty(), "{} has no queries", file.display());
        let mut rewritten = preamble.join("\n");
        if !rewritten.is_empty() {
            rewritten.push('\n');
        }
        for record in &records {
            let actual = run(&engine, record).await;
            // Every query prints in canonical form and parses back to the same tree,
            // and the canonical form gives the same answer.
            if let Ok(parsed) = traceql_parser::parse(&record.query) {
                let printed = parsed.to_string();
                let reparsed = traceql_parser::parse(&printed);
                let same_tree = reparsed.as_ref().is_ok_and(|r| *r == parsed);
                let same_text = reparsed.is_ok_and(|r| r.to_string() == printed);
                let canonical = Record {
                    query: printed.clone(),
                    ..record.clone()
                };
                let same_answer = run(&engine, &canonical).await == actual;
                if !(same_tree && same_text && same_answer) {
                    mismatches.push(format!(
                        "{}: `{}` prints as `{printed}`, which does not parse back to the \
                         same tree (same tree {same_tree}, same text {same_text}) or gives \
                         another answer (same answer {same_answer})",
                        file.display(),
                        record.query
                    ));
                }
            }
            if actual != record.expected {
                mismatches.push(format!(
                    "{}: `{}`\n--- expected\n{}\n--- actual\n{}",
                    file.display(),
                    record.query,
                    record.expected,
                    actual
                ));
            }
            let _ = write!(
                rewritten,
                "{}\n{}\n----\n{}\n\n",
                record.header, record.query, actual
            );
        }
        if overwrite {
            std::fs::write(&file, rewritten.trim_end().to_string() + "\n").expect("rewrite");
        }
    }
    assert!(
        overwrite || mismatches.is_empty(),
        "{} golden results differ (rerun with TRACEQL_GOLDEN=overwrite and review the diff):\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}

/// A label value as Tempo's JSON writes it: `{}` for nil.
fn label_json(value: &Option<traceql_format::value::Value>) -> serde_json::Value {
    match value {
        Some(v) => serde_json::json!(v),
        None => serde_json::json!({}),
    }
}

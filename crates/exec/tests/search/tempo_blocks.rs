//! Grafana Tempo's own blocks (`shared/tempo-blocks/`, vParquet4 and vParquet5, written
//! by Tempo from known OTLP input): every query of `queries.yaml` gives Tempo's recorded
//! all-results answer from both block versions, and from the same blocks converted to
//! traceql blocks, except where traceql's documented semantics differ on purpose (named
//! in [`DIFFERENCES`]); and the blocks hold the spans that ingesting the same input
//! gives.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;
use traceql_exec::convert::convert;
use traceql_exec::metrics::MetricsOptions;
use traceql_exec::store::Store;
use traceql_exec::{Engine, SearchOptions};
use traceql_format::block::BlockOptions;
use traceql_format::model::Span;
use traceql_format::value::Value;
use traceql_testkit::require_shared;

/// What traceql gives where it differs from Tempo on purpose.
enum Expect {
    /// The answer Tempo gave on the other block version.
    AnswerOf(&'static str),
    /// Metrics `by` an attribute that is sometimes an array: traceql gives each array
    /// value a series of its own, where Tempo files those spans under an element (or
    /// under nil on vParquet4). Every other series is Tempo's (on this version's).
    ArraysApart(&'static str),
}

/// The queries whose answer on a block version differs from Tempo's on purpose.
const DIFFERENCES: [(&str, &str, Expect); 7] = [
    // vParquet4 keeps array values of a dedicated-column key in the generic attributes,
    // and Tempo does not look there for a string operand; traceql reads both, so the
    // arrays match as they do on vParquet5.
    ("v4", "q23", Expect::AnswerOf("v5")),
    ("v4", "q24", Expect::AnswerOf("v5")),
    ("v4", "q70", Expect::AnswerOf("v5")),
    ("v4", "q72", Expect::AnswerOf("v5")),
    // vParquet4 has no child counts, and Tempo matches nothing there; traceql counts
    // children from parent ids on every block.
    ("v4", "q71", Expect::AnswerOf("v5")),
    ("v4", "m05", Expect::ArraysApart("v5")),
    ("v5", "m05", Expect::ArraysApart("v5")),
];

#[derive(Deserialize)]
struct Queries {
    queries: Vec<Query>,
}

#[derive(Deserialize)]
struct Query {
    id: String,
    kind: String,
    query: String,
    v4: Answer,
    v5: Answer,
}

/// A recorded answer. Ids are read as strings: some hex ids look like YAML numbers.
#[derive(Deserialize)]
struct Answer {
    /// Search: trace id (leading zeros stripped) → matched span ids.
    #[serde(default)]
    traces: BTreeMap<String, Vec<String>>,
    /// Metrics: the `query_range` body.
    #[serde(default)]
    response: Json,
}

const START: u64 = 1_795_774_201;
const END: u64 = 1_795_776_599;
const SECOND: u64 = 1_000_000_000;

fn queries(dir: &Path) -> Vec<Query> {
    let text = std::fs::read_to_string(dir.join("queries.yaml")).unwrap();
    serde_norway::from_str::<Queries>(&text).unwrap().queries
}

/// Trace id (32 hex digits) → sorted span ids.
type Found = BTreeMap<String, BTreeSet<String>>;

/// Tempo's recorded search answer, with trace ids padded back to 32 digits.
fn recorded(answer: &Answer) -> Found {
    answer
        .traces
        .iter()
        .map(|(id, spans)| (format!("{id:0>32}"), spans.iter().cloned().collect()))
        .collect()
}

async fn search(engine: &Engine, query: &str) -> Result<Found, String> {
    let options = SearchOptions {
        limit: 100_000,
        spans_per_spanset: 100_000,
        start_unix_nano: Some(START * SECOND),
        end_unix_nano: Some(END * SECOND),
        ..SearchOptions::default()
    };
    let response = engine
        .search(query, &options)
        .await
        .map_err(|e| e.to_string())?;
    let mut found = Found::new();
    for trace in &response.traces {
        let spans = found.entry(format!("{:0>32}", trace.trace_id)).or_default();
        for set in &trace.span_sets {
            spans.extend(set.spans.iter().map(|s| s.span_id.clone()));
        }
    }
    Ok(found)
}

/// A metrics answer: labels (as JSON text) → timestamp → value.
type Samples = BTreeMap<String, BTreeMap<String, f64>>;

/// The samples of a `query_range` body. Tempo's protobuf JSON leaves out a value of
/// 0 (the default), so a sample without one is 0; `NaN` samples are left out.
fn samples(body: &Json) -> Samples {
    let mut out = Samples::new();
    for series in body["series"].as_array().into_iter().flatten() {
        let labels = series["labels"].to_string();
        let points = out.entry(labels).or_default();
        for sample in series["samples"].as_array().into_iter().flatten() {
            let value = match sample.get("value") {
                None => 0.0,
                Some(v) => match v.as_f64() {
                    Some(v) => v,
                    None => continue,
                },
            };
            points.insert(sample["timestampMs"].as_str().unwrap().to_string(), value);
        }
    }
    out.retain(|_, points| !points.is_empty());
    out
}

async fn metrics(engine: &Engine, query: &str) -> Result<Samples, String> {
    let options = MetricsOptions {
        start_unix_nano: Some(START * SECOND),
        end_unix_nano: Some(END * SECOND),
        step_nano: Some(60 * SECOND),
        instant: false,
    };
    let (response, _) = engine
        .metrics(query, &options)
        .await
        .map_err(|e| e.to_string())?;
    Ok(samples(&serde_json::to_value(&response).unwrap()))
}

fn same_samples(got: &Samples, want: &Samples) -> Result<(), String> {
    let labels = |s: &Samples| s.keys().cloned().collect::<Vec<_>>();
    if labels(got) != labels(want) {
        return Err(format!(
            "series differ: got {:?}, want {:?}",
            labels(got),
            labels(want)
        ));
    }
    for (series, points) in want {
        let ours = &got[series];
        if ours.keys().ne(points.keys()) {
            return Err(format!("{series}: buckets differ"));
        }
        for (t, v) in points {
            let o = ours[t];
            if (o - v).abs() > 1e-9 * v.abs().max(1.0) {
                return Err(format!("{series} at {t}: got {o}, want {v}"));
            }
        }
    }
    Ok(())
}

/// `got` without its array-labelled series, and both without the series labelled by
/// an element of those arrays (see [`Expect::ArraysApart`]); an error if there were
/// no array series.
fn without_arrays(got: Samples, want: Samples) -> Result<(Samples, Samples), String> {
    let mut elements = BTreeSet::new();
    let mut arrays = 0;
    for labels in got.keys() {
        let labels: Json = serde_json::from_str(labels).unwrap();
        for label in labels.as_array().into_iter().flatten() {
            for item in label["value"]["arrayValue"]["values"]
                .as_array()
                .into_iter()
                .flatten()
            {
                arrays += 1;
                elements.insert(item.to_string());
            }
        }
    }
    if arrays == 0 {
        return Err("no series is labelled by an array".into());
    }
    let keep = |labels: &String| {
        let labels: Json = serde_json::from_str(labels).unwrap();
        labels.as_array().into_iter().flatten().all(|label| {
            label["value"].get("arrayValue").is_none()
                && !elements.contains(&label["value"].to_string())
        })
    };
    let only = |s: Samples| s.into_iter().filter(|(labels, _)| keep(labels)).collect();
    Ok((only(got), only(want)))
}

/// Runs every query on the block of `version`, and on the same block converted to a
/// traceql block: how many ran, and those that differ.
async fn check_version(dir: &Path, queries: &[Query], version: &str) -> (usize, Vec<String>) {
    let tempo = Store::local(&block_dir(dir, version), false).unwrap();
    let converted = Store::in_memory(&format!("converted-{version}"));
    let report = convert(&tempo, &converted, &BlockOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        (
            report.converted_blocks,
            report.written.traces,
            report.written.spans
        ),
        (1, 3000, 30_781),
        "{version}: converted"
    );
    // Converting again replaces the first conversion in one step: no copies.
    let first = converted.list_blocks().await.unwrap();
    let again = convert(&tempo, &converted, &BlockOptions::default(), &|_| {})
        .await
        .unwrap();
    let second = converted.list_blocks().await.unwrap();
    assert_eq!(again.replaced_blocks, 1, "{version}: replaced");
    assert_eq!(
        second.len(),
        1,
        "{version}: one block after converting again"
    );
    assert_ne!(first[0].id, second[0].id, "{version}: a new block");
    assert_eq!(second[0].spans, 30_781, "{version}: converted again");
    assert_eq!(
        second[0].source_block.as_deref(),
        Some(tempo.list_blocks().await.unwrap()[0].id.as_str())
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    for (engine, what) in [
        (
            Engine::with_store(tempo).await.unwrap(),
            version.to_string(),
        ),
        (
            Engine::with_store(converted).await.unwrap(),
            format!("{version} converted"),
        ),
    ] {
        assert_eq!(engine.blocks().count(), 1, "{what}: one block");
        let (n, mut f) = check_engine(&engine, queries, version, &what).await;
        checked += n;
        failures.append(&mut f);
    }
    (checked, failures)
}

/// Runs every query on `engine`, which holds the block of `version`.
async fn check_engine(
    engine: &Engine,
    queries: &[Query],
    version: &str,
    what: &str,
) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for q in queries {
        let expect = DIFFERENCES
            .iter()
            .find(|(v, id, _)| *v == version && *id == q.id)
            .map(|(_, _, e)| e);
        let answer_of = match expect {
            Some(Expect::AnswerOf(other) | Expect::ArraysApart(other)) => other,
            _ => version,
        };
        let answer = if answer_of == "v4" { &q.v4 } else { &q.v5 };
        let outcome = if q.kind == "search" {
            search(engine, &q.query).await.and_then(|got| {
                let want = recorded(answer);
                if got == want {
                    return Ok(());
                }
                let extra: Vec<_> = got.keys().filter(|t| !want.contains_key(*t)).take(3).collect();
                let missing: Vec<_> = want.keys().filter(|t| !got.contains_key(*t)).take(3).collect();
                let spans = got.values().map(BTreeSet::len).sum::<usize>();
                let want_spans = want.values().map(BTreeSet::len).sum::<usize>();
                Err(format!(
                    "{} traces / {spans} spans, Tempo {} / {want_spans}; extra {extra:?}, missing {missing:?}",
                    got.len(),
                    want.len()
                ))
            })
        } else {
            let arrays_apart = matches!(expect, Some(Expect::ArraysApart(_)));
            metrics(engine, &q.query).await.and_then(|got| {
                let want = samples(&answer.response);
                if arrays_apart {
                    let (got, want) = without_arrays(got, want)?;
                    same_samples(&got, &want)
                } else {
                    same_samples(&got, &want)
                }
            })
        };
        checked += 1;
        if let Err(e) = outcome {
            failures.push(format!("{what} {} `{}`: {e}", q.id, q.query));
        }
    }
    (checked, failures)
}

pub(crate) fn block_dir(dir: &Path, version: &str) -> PathBuf {
    dir.join(format!("vparquet{}", &version[1..]))
}

/// The directory of the one block of `version`.
fn the_block(dir: &Path, version: &str) -> PathBuf {
    std::fs::read_dir(block_dir(dir, version).join("single-tenant"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap()
}

/// The spans of the OTLP input Tempo ingested to make the blocks.
pub(crate) fn input_spans(dir: &Path) -> Vec<Span> {
    traceql_exec::otlp::read_file(&dir.join("input/traces.otlp.jsonl.zst"), false)
        .unwrap()
        .spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_query_gives_tempos_answer_on_both_block_versions() {
    let dir = require_shared!(dir("tempo-blocks"));
    let queries = queries(&dir);
    // Both versions at once: each query reads its whole block, in the debug build.
    let (v4, v5) = tokio::join!(
        check_version(&dir, &queries, "v4"),
        check_version(&dir, &queries, "v5")
    );
    let checked = v4.0 + v5.0;
    let failures: Vec<String> = v4.1.into_iter().chain(v5.1).collect();
    assert_eq!(
        checked, 320,
        "80 queries on two block versions, read and converted"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} differ from Tempo:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A span as Tempo keeps it, for comparison: every field Tempo stores, attributes
/// sorted (Tempo moves dedicated and well-known ones to the end), unqueryable values as
/// parsed JSON (Tempo re-encodes them).
fn kept(span: &Span, dedicated: &[(&str, &str)]) -> String {
    use traceql_format::value::KeyValue;
    let attrs = |scope: &str, list: &[KeyValue]| {
        let mut out: Vec<String> = list
            .iter()
            .filter_map(|kv| {
                let mut value = kv.value.clone();
                // A dedicated column keeps one value per element: a one-element array
                // reads back as a scalar, an empty one is lost (vParquet5).
                if dedicated.contains(&(scope, kv.key.as_str())) {
                    value = match value {
                        Value::StrArray(mut v) if v.len() == 1 => Value::Str(v.remove(0)),
                        Value::IntArray(v) if v.len() == 1 => Value::Int(v[0]),
                        Value::Opaque(ref j)
                            if j.contains("arrayValue") && !j.contains("Value\"") =>
                        {
                            return None;
                        }
                        v => v,
                    };
                }
                if scope == "resource"
                    && kv.key == "service.name"
                    && value == Value::Str(String::new())
                {
                    return None;
                }
                Some(match value {
                    Value::Opaque(j) => {
                        let parsed: Json = serde_json::from_str(&j).unwrap();
                        // An empty array: `{"arrayValue":{}}` and `{"arrayValue":{"values":[]}}`.
                        let empty = parsed["arrayValue"]
                            .get("values")
                            .and_then(Json::as_array)
                            .is_none_or(Vec::is_empty)
                            && parsed.get("arrayValue").is_some();
                        if empty {
                            format!("{}=[]", kv.key)
                        } else {
                            format!("{}={parsed}", kv.key)
                        }
                    }
                    v => format!("{}={v:?}", kv.key),
                })
            })
            .collect();
        out.sort();
        out
    };
    let events: Vec<String> = span
        .events
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} {}",
                e.time_unix_nano,
                e.name,
                attrs("event", &e.attributes),
                e.dropped_attributes_count
            )
        })
        .collect();
    let links: Vec<String> = span
        .links
        .iter()
        .map(|l| {
            format!(
                "{:?} {:?} {} {:?} {}",
                l.trace_id,
                l.span_id,
                l.trace_state,
                attrs("link", &l.attributes),
                l.dropped_attributes_count
            )
        })
        .collect();
    format!(
        "{:?} {:?} parent={:?} {} kind={} {}..{} status={} {:?} state={:?} attrs={:?} dropped={} \
         events={events:?}/{} links={links:?}/{} resource={:?}/{} scope={} {} {:?}/{}",
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.start_unix_nano,
        span.end_unix_nano,
        span.status_code,
        span.status_message,
        span.trace_state,
        attrs("span", &span.attributes),
        span.dropped_attributes_count,
        span.dropped_events_count,
        span.dropped_links_count,
        attrs("resource", &span.resource.attributes),
        span.resource.dropped_attributes_count,
        span.scope.name,
        span.scope.version,
        attrs("instrumentation", &span.scope.attributes),
        span.scope.dropped_attributes_count,
    )
}

/// The spans of a Tempo block's `data.parquet`, decoded as the engine decodes them.
fn tempo_spans(block: &Path) -> Vec<Span> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use traceql_format::tempo::{TempoMeta, TraceDecoder};
    let (_, tempo) = TempoMeta::parse(&std::fs::read(block.join("meta.json")).unwrap())
        .unwrap()
        .open()
        .unwrap();
    let decoder = TraceDecoder::new(tempo.version, &tempo.dedicated);
    let file = std::fs::File::open(block.join("data.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(100)
        .build()
        .unwrap();
    let mut spans = Vec::new();
    for batch in reader {
        for trace in decoder.decode(&batch.unwrap()).unwrap() {
            spans.extend(trace);
        }
    }
    spans
}

#[test]
fn tempo_blocks_hold_the_spans_that_ingest_reads_from_the_same_input() {
    let dir = require_shared!(dir("tempo-blocks"));
    let input = input_spans(&dir);
    assert_eq!(input.len(), 30_781);
    for (version, dedicated) in [
        ("v4", &[][..]),
        (
            "v5",
            &[
                ("span", "http.route"),
                ("span", "http.status_code"),
                ("span", "db.statement"),
                ("resource", "deployment.environment"),
                ("event", "exception.type"),
            ][..],
        ),
    ] {
        let block = the_block(&dir, version);
        let mut want: Vec<String> = input.iter().map(|s| kept(s, dedicated)).collect();
        let mut got: Vec<String> = tempo_spans(&block)
            .iter()
            .map(|s| kept(s, dedicated))
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got.len(), want.len(), "{version}: span count");
        let differ: Vec<(&String, &String)> = got
            .iter()
            .zip(&want)
            .filter(|(g, w)| g != w)
            .take(2)
            .collect();
        assert!(
            differ.is_empty(),
            "{version}: spans differ, e.g. {differ:#?}"
        );
    }
}

/// Copies directory `from` into `to`, files writable.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::write(&target, std::fs::read(&path).unwrap()).unwrap();
        }
    }
}

#[tokio::test]
async fn a_tempo_bucket_is_read_as_tempo_lays_it_out_and_a_broken_block_is_named() {
    let dir = require_shared!(dir("tempo-blocks"));
    let root = std::env::temp_dir().join(format!("traceql-tempo-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    copy_dir(&block_dir(&dir, "v5"), &root);
    let tenant = root.join("single-tenant");
    let id = "6ed8f22a-e948-4664-9fbb-b1485b8f1662";
    let meta = std::fs::read_to_string(tenant.join(id).join("meta.json")).unwrap();
    // A block of a version this version does not read, and a compacted block (its
    // meta.json renamed, as Tempo's compactor leaves it): neither is read.
    let old = "11111111-2222-3333-4444-555555555555";
    std::fs::create_dir_all(tenant.join(old)).unwrap();
    std::fs::write(
        tenant.join(old).join("meta.json"),
        meta.replace(id, old).replace("vParquet5", "vParquet3"),
    )
    .unwrap();
    let compacted = "66666666-7777-8888-9999-000000000000";
    copy_dir(&tenant.join(id), &tenant.join(compacted));
    std::fs::rename(
        tenant.join(compacted).join("meta.json"),
        tenant.join(compacted).join("meta.compacted.json"),
    )
    .unwrap();
    assert!(
        root.join("work.json").is_file(),
        "the scheduler's file stays at the root"
    );

    let engine = Engine::open(root.to_str().unwrap()).await.unwrap();
    let ids: Vec<&str> = engine.blocks().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, [id]);
    assert_eq!(engine.skipped_blocks(), [format!("{old} (vParquet3)")]);
    let errors = search(&engine, "{ status = error }").await.unwrap();
    assert_eq!(errors.len(), 193);

    // A block whose data are damaged inside: the error is one line naming the block.
    let data = tenant.join(id).join("data.parquet");
    let mut bytes = std::fs::read(&data).unwrap();
    for i in (200_000..1_200_000).step_by(1000) {
        bytes[i] ^= 0xff;
    }
    std::fs::write(&data, &bytes).unwrap();
    let error = search(&engine, "{ status = error }").await.unwrap_err();
    assert!(error.contains(id) && !error.contains('\n'), "{error}");

    // Cut short: the footer is gone, and the error says so.
    std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
    let error = search(&engine, "{ }").await.unwrap_err();
    assert!(
        error.contains(id) && error.contains("not a valid Parquet file"),
        "{error}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// Queries whose filters a Tempo scan tests before it decodes rows, reaching each
/// kind of test: span columns with every operator, numbers of one type compared with
/// the other, attributes in generic lists, dedicated and well-known columns, several
/// scopes at once, events and links, arrays, `||`, and filters under structural
/// operators.
const ROW_FILTERED: [&str; 34] = [
    "{ name < \"cart\" && duration <= 2ms }",
    "{ name != \"db.query\" && status != ok }",
    "{ statusMessage !~ \"HTTP.*\" && status = error }",
    "{ kind != server && duration > 100000000 }",
    "{ duration > 0.2e9 }",
    "{ span.payment.amount > 850 }",
    "{ span.payment.amount >= 850.5 }",
    "{ span.db.rows_affected = 24.0 }",
    "{ span.http.status_code > 400.5 }",
    "{ span.http.status_code != 200 && kind = server }",
    "{ span.http.method = \"POST\" }",
    "{ span.http.route =~ \"/api/c.*\" || resource.deployment.environment = \"prod\" }",
    "{ .service.name = \"payment\" && .http.status_code >= 500 }",
    "{ resource.service.canary = true }",
    "{ resource.service.weight < 0.3 }",
    "{ resource.k8s.pod.name =~ \"cart-.*\" }",
    "{ instrumentation.shop.team = \"platform\" }",
    "{ span.cart.item_ids >= 198 }",
    "{ span.auth.scopes =~ \"wri.*\" }",
    "{ span.http.status_code = 401 } >> { }",
    "{ status = error } | by(resource.service.name) | count() > 1",
    "{ resource.service.name = \"nothing-has-this\" }",
    "{ trace:id = \"0e03a4fb3e706945ff97fd660bdf0a29\" }",
    "{ trace:id =~ \"e0.*\" }",
    "{ trace:id > \"fe\" && kind = server }",
    "{ event:name = \"exception\" && resource.service.name = \"inventory\" }",
    "{ event:name =~ \"exc.*\" || name = \"db.query\" }",
    "{ event.exception.type = \"TimeoutError\" }",
    "{ event.db.timeout_ms >= 5000 }",
    "{ link.link.reason = \"retry\" && link.link.attempt = 1 }",
    "{ span:id = \"88c6a5d7bd583c3f\" }",
    "{ span:parentID = \"4df0191f34429ec4\" || span:parentID = \"0\" && kind = client }",
    "{ link:spanID = \"5c25faaebb2f42d5\" }",
    "{ link:traceID =~ \"0.*\" || link:traceID > \"f\" }",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_filters_on_tempo_blocks_keep_every_trace_a_query_matches() {
    let dir = require_shared!(dir("tempo-blocks"));
    for version in ["v4", "v5"] {
        let tempo = Store::local(&block_dir(&dir, version), false).unwrap();
        let converted = Store::in_memory(&format!("filtered-{version}"));
        convert(&tempo, &converted, &BlockOptions::default(), &|_| {})
            .await
            .unwrap();
        let tempo = Engine::with_store(tempo).await.unwrap();
        let converted = Engine::with_store(converted).await.unwrap();
        let mut matched = 0;
        for query in ROW_FILTERED {
            let want = search(&converted, query).await.unwrap();
            matched += usize::from(!want.is_empty());
            let got = search(&tempo, query).await.unwrap();
            let spans = |f: &Found| f.values().map(BTreeSet::len).sum::<usize>();
            assert!(
                got == want,
                "{version} `{query}`: {} traces / {} spans, converted {} / {}",
                got.len(),
                spans(&got),
                want.len(),
                spans(&want)
            );
        }
        assert!(
            matched >= 21,
            "{version}: {matched} queries match something"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_and_traceql_blocks_side_by_side_are_queried_as_one() {
    let dir = require_shared!(dir("tempo-blocks"));
    let root = std::env::temp_dir().join(format!("traceql-tempo-mixed-{}", std::process::id()));
    let own = root.join("own");
    let mixed = root.join("mixed");
    let _ = std::fs::remove_dir_all(&root);
    copy_dir(&block_dir(&dir, "v5"), &mixed);
    // traceql blocks of other traces, in the same store and in a store of their own.
    let mut generator = traceql_gen::Generator::new(5, 1_795_775_000_000_000_000, 2_000_000_000);
    let traces: Vec<_> = (0..300).map(|_| generator.next_trace()).collect();
    let options = BlockOptions {
        spans_per_block: 1_500,
        ..BlockOptions::default()
    };
    for store in [&own, &mixed] {
        let store = Store::local(store, true).unwrap();
        crate::common::write_numbered(&store, traces.clone(), &options).await;
    }
    let open = |p: &Path| Engine::open(p.to_str().unwrap().to_string().leak());
    let (tempo, own, mixed) = (
        open(&block_dir(&dir, "v5")).await.unwrap(),
        open(&own).await.unwrap(),
        open(&mixed).await.unwrap(),
    );
    assert!(
        mixed.blocks().count() > 2,
        "one Tempo block and several of traceql's"
    );
    for query in [
        "{ status = error }",
        "{ kind = server } >> { status = error }",
        "{ kind = server } !>> { status = error }",
        "{ } | count() > 12",
        "{ resource.service.name != nil } | by(resource.service.name) | count() > 2",
    ] {
        let mut want = search(&tempo, query).await.unwrap();
        want.extend(search(&own, query).await.unwrap());
        assert!(!want.is_empty(), "`{query}` matches");
        assert_eq!(search(&mixed, query).await.unwrap(), want, "`{query}`");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn tempo_bloom_filters_hold_every_trace_and_rule_out_others() {
    use traceql_format::tempo::bloom;
    let dir = require_shared!(dir("tempo-blocks"));
    let input = input_spans(&dir);
    let ids: BTreeSet<[u8; 16]> = input.iter().map(|s| s.trace_id).collect();
    assert_eq!(ids.len(), 3000);
    for version in ["v4", "v5"] {
        let block = the_block(&dir, version);
        let filter = std::fs::read(block.join(bloom::file_name(0))).unwrap();
        for id in &ids {
            assert_eq!(bloom::shard(id, 1), 0);
            assert!(
                bloom::may_contain(&filter, id).unwrap(),
                "{version}: {id:?}"
            );
        }
        // Ids that are not there: a 1% false-positive rate at most lets a few through.
        let mut rng = traceql_gen::Rng::new(3);
        let absent = (0..2000)
            .map(|_| {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                id[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
                id
            })
            .filter(|id| bloom::may_contain(&filter, id).unwrap())
            .count();
        assert!(absent < 60, "{version}: {absent} of 2000 absent ids pass");

        let engine = Engine::open(block_dir(&dir, version).to_str().unwrap())
            .await
            .unwrap();
        let trace = engine
            .trace("0e03a4fb3e706945ff97fd660bdf0a29")
            .await
            .unwrap();
        assert_eq!(trace.len(), 7);
        assert!(
            engine
                .trace("ffffffffffffffffffffffffffffffff")
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_limited_search_reads_a_lone_tempo_block_once() {
    let dir = require_shared!(dir("tempo-blocks"));
    let engine = Engine::open(block_dir(&dir, "v5").to_str().unwrap())
        .await
        .unwrap();
    let query = "{ status = error }";
    let (first, stats) = engine
        .search_with_stats(query, &SearchOptions::default())
        .await
        .unwrap();
    // Rows inside a Tempo block are not in time order: every window would read it all.
    assert_eq!(stats.rounds, 1);
    let all = engine
        .search(
            query,
            &SearchOptions {
                limit: 100_000,
                ..SearchOptions::default()
            },
        )
        .await
        .unwrap();
    let newest: Vec<&str> = all.traces[..20]
        .iter()
        .map(|t| t.trace_id.as_str())
        .collect();
    let got: Vec<&str> = first.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(got, newest, "the 20 newest of all matches");
}

/// A Tempo block's generic attribute keys and service names come from its columns'
/// dictionaries: every attribute of the input is named (with the dedicated columns
/// `meta.json` lists), the service names are exactly the input's, and the block needs
/// no sampling. A block that records no keys (here a traceql block with more keys than
/// it records) is sampled instead.
#[tokio::test]
async fn tempo_blocks_name_their_attributes_and_services_from_their_dictionaries() {
    let dir = require_shared!(dir("tempo-blocks"));
    let input = input_spans(&dir);
    let mut names = std::collections::BTreeSet::new();
    let mut services = std::collections::BTreeSet::new();
    for span in &input {
        for (scope, attrs) in [
            ("span", &span.attributes),
            ("resource", &span.resource.attributes),
        ] {
            for kv in attrs.iter() {
                names.insert(format!("{scope}.{}", kv.key));
            }
        }
        if let Some(service) = span.resource.service_name() {
            services.insert(service.to_string());
        }
    }
    for version in ["v4", "v5"] {
        let engine = Engine::open(
            block_dir(&dir, version)
                .to_str()
                .unwrap()
                .to_string()
                .leak(),
        )
        .await
        .unwrap();
        let known: std::collections::BTreeSet<String> =
            engine.attribute_names().into_iter().collect();
        let missing: Vec<_> = names.difference(&known).collect();
        assert!(missing.is_empty(), "{version}: not named: {missing:?}");
        assert!(
            known.iter().any(|n| n.starts_with("event.")),
            "{version}: event attributes named"
        );
        let values: std::collections::BTreeSet<String> = engine
            .known_values("resource.service.name")
            .into_iter()
            .collect();
        assert_eq!(values, services, "{version}: service names");
        assert_eq!(
            engine.sample_unrecorded_blocks().await.unwrap(),
            Default::default(),
            "{version}: nothing to sample"
        );
    }
    // More keys than a traceql block records: the block is sampled.
    let many = Store::in_memory("many-keys");
    let mut generator = traceql_gen::Generator::new(9, 1_795_775_000_000_000_000, 2_000_000_000);
    let mut traces: Vec<_> = (0..20).map(|_| generator.next_trace()).collect();
    for (i, span) in traces.iter_mut().flatten().enumerate() {
        for k in 0..40 {
            span.attributes.push(traceql_format::value::KeyValue {
                key: format!("key.{i}.{k}"),
                value: traceql_format::value::Value::Str("v".into()),
            });
        }
    }
    let keys: usize = traces.iter().map(Vec::len).sum::<usize>() * 40;
    assert!(keys > traceql_format::block::meta::MAX_FALLBACK_KEYS);
    crate::common::write_numbered(&many, traces, &BlockOptions::default()).await;
    let engine = Engine::with_store(many).await.unwrap();
    let sample = engine.sample_unrecorded_blocks().await.unwrap();
    assert!(
        sample.names.contains("span.key.0.0"),
        "{:?}",
        sample.names.len()
    );
    assert!(!sample.values["name"].is_empty());
    // traceql's blocks describe themselves: nothing is sampled.
    let demo = crate::common::repo().join("testdata/demo");
    let engine = Engine::open(demo.to_str().unwrap().to_string().leak())
        .await
        .unwrap();
    assert_eq!(
        engine.sample_unrecorded_blocks().await.unwrap(),
        Default::default()
    );
}

//! Metrics queries against a reference: the spans the reference evaluator selects,
//! bucketed and aggregated here in plain Rust, must give the engine's series.

use std::collections::BTreeMap;

use proptest::prelude::*;
use traceql_exec::Engine;
use traceql_exec::metrics::{MetricsOptions, MetricsResponse};
use traceql_format::block::BlockOptions;
use traceql_format::codes::{kind, status};
use traceql_format::display::value_text;
use traceql_format::model::Span;
use traceql_format::value::Value;
use traceql_gen::{Generator, Rng};
use traceql_parser::ast::{Query, QueryBody};

use crate::common::{engine_with, store_with};
use crate::reference;
use traceql_gen::random::traces;

const SECOND: u64 = 1_000_000_000;

/// A series as text: its labels (`key=value`), and one value per bucket.
type Answer = BTreeMap<Vec<String>, Vec<f64>>;

fn answer(response: &MetricsResponse) -> Answer {
    response
        .series
        .iter()
        .map(|s| {
            let labels = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={}", value_text(v.as_ref())))
                .collect();
            (labels, s.values.clone())
        })
        .collect()
}

/// A `by` field's value for a span, as text; `None` for nil.
fn by_value(span: &Span, field: &str) -> Option<String> {
    let attr = |list: &[traceql_format::value::KeyValue], key: &str| {
        list.iter()
            .find(|kv| kv.key == key)
            .map(|kv| match &kv.value {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Float(f) => f.to_string(),
                other => format!("{other:?}"),
            })
    };
    match field {
        "name" => Some(span.name.clone()),
        "status" => Some(status::name(span.status_code).to_string()),
        "resource.service.name" => attr(&span.resource.attributes, "service.name"),
        "resource.a" => attr(&span.resource.attributes, "a"),
        "span.b" => attr(&span.attributes, "b"),
        "span.d" => attr(&span.attributes, "d"),
        other => panic!("no reference for by({other})"),
    }
}

/// The function argument's numeric value for a span, if it has one.
fn argument(span: &Span, field: &str) -> Option<f64> {
    match field {
        "duration" => Some((span.end_unix_nano - span.start_unix_nano) as f64),
        "span.c" => span
            .attributes
            .iter()
            .find_map(|kv| match (&*kv.key, &kv.value) {
                ("c", Value::Float(f)) => Some(*f),
                ("c", Value::Int(i)) => Some(*i as f64),
                _ => None,
            }),
        other => panic!("no reference for {other}"),
    }
}

/// The upper bound of the power-of-two bucket holding `ns`.
fn log2_bound(ns: u64) -> u64 {
    ns.max(1).next_power_of_two()
}

/// The labels of a span's series.
fn labels(span: &Span, by: &[&str], function: &str) -> Vec<String> {
    if by.is_empty() {
        return vec![format!("__name__={function}")];
    }
    let present: Vec<String> = by
        .iter()
        .filter_map(|f| by_value(span, f).map(|v| format!("{f}={v}")))
        .collect();
    if present.is_empty() {
        vec![format!("{}=nil", by[0])]
    } else {
        present
    }
}

/// The reference answer of `function(arg) by (by…)` over `spans` for `buckets`.
fn expected(
    spans: &[&Span],
    function: &str,
    arg: Option<&str>,
    by: &[&str],
    response: &MetricsResponse,
) -> Answer {
    let b = response.buckets;
    let n = b.count() as usize;
    // Per series, per bucket: the argument values (or one 1.0 per span for counts).
    let mut groups: BTreeMap<Vec<String>, Vec<Vec<f64>>> = BTreeMap::new();
    for span in spans {
        let t = span.start_unix_nano;
        if t <= b.start || t > b.end {
            continue;
        }
        let i = ((t - b.start - 1) / b.step) as usize;
        let value = match arg {
            Some(field) => match argument(span, field) {
                Some(v) => v,
                None => continue,
            },
            None => 1.0,
        };
        groups
            .entry(labels(span, by, function))
            .or_insert_with(|| vec![Vec::new(); n])[i]
            .push(value);
    }
    let seconds = |v: f64| if arg == Some("duration") { v / 1e9 } else { v };
    let mut out = Answer::new();
    for (labels, per_bucket) in groups {
        match function {
            "histogram_over_time" => {
                let mut bounds: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
                for (i, values) in per_bucket.iter().enumerate() {
                    for v in values {
                        bounds
                            .entry(log2_bound(*v as u64))
                            .or_insert_with(|| vec![0.0; n])[i] += 1.0;
                    }
                }
                for (bound, counts) in bounds {
                    // Histogram series are named by their bucket alone.
                    let mut l: Vec<String> = labels
                        .iter()
                        .filter(|l| !l.starts_with("__name__="))
                        .cloned()
                        .collect();
                    l.push(format!("__bucket={}", bound as f64 / 1e9));
                    out.insert(l, counts);
                }
            }
            _ => {
                let values = per_bucket
                    .iter()
                    .map(|values| {
                        let sum: f64 = values.iter().sum();
                        match function {
                            "count_over_time" => values.len() as f64,
                            "rate" => values.len() as f64 / (b.step as f64 / 1e9),
                            _ if values.is_empty() => f64::NAN,
                            "min_over_time" => {
                                seconds(values.iter().copied().fold(f64::MAX, f64::min))
                            }
                            "max_over_time" => {
                                seconds(values.iter().copied().fold(f64::MIN, f64::max))
                            }
                            "sum_over_time" => seconds(sum),
                            "avg_over_time" => seconds(sum / values.len() as f64),
                            other => panic!("{other}"),
                        }
                    })
                    .collect();
                out.insert(labels, values);
            }
        }
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_same(got: &Answer, want: &Answer, context: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "series of {context}"
    );
    for (labels, values) in want {
        let g = &got[labels];
        assert!(
            g.iter().zip(values).all(|(a, b)| close(*a, *b)),
            "{context} {labels:?}:\n got {g:?}\nwant {values:?}"
        );
    }
}

const FUNCTIONS: &[(&str, Option<&str>)] = &[
    ("rate", None),
    ("count_over_time", None),
    ("min_over_time", Some("duration")),
    ("max_over_time", Some("span.c")),
    ("avg_over_time", Some("duration")),
    ("sum_over_time", Some("span.c")),
    ("histogram_over_time", Some("duration")),
];
const BY: &[&str] = &[
    "resource.service.name",
    "name",
    "status",
    "span.b",
    "span.d",
    "resource.a",
];
const PIPELINES: &[&str] = &[
    "{ }",
    "{ .a = 1 }",
    "{ status = error }",
    "{ span.c > 0.5 || .d = true }",
    "{ resource.service.name = \"api\" } >> { }",
    "{ } | count() > 2",
    "{ .b = \"x\" } && { kind = server }",
];

fn options(step: u64) -> MetricsOptions {
    MetricsOptions {
        start_unix_nano: Some(1_000_000_000_000 - SECOND),
        end_unix_nano: Some(1_000_000_000_000 + 7 * SECOND),
        step_nano: Some(step),
        instant: false,
    }
}

fn check(seed: u64) {
    let spans = traces(seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let small = BlockOptions {
        spans_per_block: 6,
        typed_min_fraction: 0.3,
        ..BlockOptions::default()
    };
    let engine = runtime.block_on(async {
        Engine::with_store(store_with(spans.clone(), &small).await)
            .await
            .unwrap()
    });
    let mut rng = Rng::new(seed ^ 0xbeef);
    for _ in 0..6 {
        let pipeline = PIPELINES[rng.range(0, PIPELINES.len() as u64 - 1) as usize];
        let (function, arg) = FUNCTIONS[rng.range(0, FUNCTIONS.len() as u64 - 1) as usize];
        let by: Vec<&str> = (0..rng.range(0, 2))
            .map(|_| BY[rng.range(0, BY.len() as u64 - 1) as usize])
            .fold(Vec::new(), |mut v, f| {
                if !v.contains(&f) {
                    v.push(f);
                }
                v
            });
        let call = match arg {
            Some(a) => format!("{function}({a})"),
            None => format!("{function}()"),
        };
        let by_text = if by.is_empty() {
            String::new()
        } else {
            format!(" by ({})", by.join(", "))
        };
        let q = format!("{pipeline} | {call}{by_text}");
        let step = [SECOND / 2, SECOND, 3 * SECOND][rng.range(0, 2) as usize];
        let (response, _) = runtime
            .block_on(engine.metrics(&q, &options(step)))
            .unwrap_or_else(|e| panic!("`{q}`: {e}"));
        let search: Query = traceql_parser::parse_and_validate(pipeline).unwrap();
        assert!(matches!(search.body, QueryBody::Search(_)));
        let Ok(chosen) = reference::selected(&spans, &search) else {
            continue;
        };
        let want = expected(&chosen, function, arg, &by, &response);
        assert_same(&answer(&response), &want, &format!("seed {seed}: `{q}`"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn metrics_agree_with_the_reference(seed in any::<u64>()) {
        check(seed);
    }
}

/// `q` over the whole store, one value per series.
async fn instant(engine: &Engine, q: &str) -> MetricsResponse {
    let options = MetricsOptions {
        instant: true,
        ..MetricsOptions::default()
    };
    engine
        .metrics(q, &options)
        .await
        .unwrap_or_else(|e| panic!("`{q}`: {e}"))
        .0
}

/// Generated traces of the realistic shape, for the whole-data-set checks.
fn shop(traces: usize) -> Vec<Span> {
    let mut generator = Generator::new(5, 1_700_000_000_000_000_000, 200_000_000);
    (0..traces).flat_map(|_| generator.next_trace()).collect()
}

#[tokio::test]
async fn counts_per_service_add_up_to_the_true_span_counts() {
    let spans = shop(400);
    let engine = engine_with(spans.clone()).await;
    let mut truth: BTreeMap<String, f64> = BTreeMap::new();
    for span in &spans {
        *truth
            .entry(by_value(span, "resource.service.name").unwrap())
            .or_default() += 1.0;
    }
    for instant in [false, true] {
        let (response, _) = engine
            .metrics(
                "{ } | count_over_time() by (resource.service.name)",
                &MetricsOptions {
                    instant,
                    ..MetricsOptions::default()
                },
            )
            .await
            .unwrap();
        let got: BTreeMap<String, f64> = response
            .series
            .iter()
            .map(|s| (value_text(s.labels[0].1.as_ref()), s.values.iter().sum()))
            .collect();
        assert_eq!(got, truth, "instant: {instant}");
    }
}

#[tokio::test]
async fn quantiles_fall_in_the_power_of_two_bucket_of_the_true_quantile() {
    let spans = shop(300);
    let engine = engine_with(spans.clone()).await;
    let response = instant(
        &engine,
        "{ kind = server } | quantile_over_time(duration, .5, .9, .99) by (resource.service.name)",
    )
    .await;
    let mut durations: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for span in spans.iter().filter(|s| s.kind == kind::SERVER) {
        durations
            .entry(by_value(span, "resource.service.name").unwrap())
            .or_default()
            .push(span.end_unix_nano - span.start_unix_nano);
    }
    assert_eq!(response.series.len(), durations.len() * 3);
    for series in &response.series {
        let service = value_text(series.labels[0].1.as_ref());
        let q: f64 = value_text(series.labels[1].1.as_ref()).parse().unwrap();
        let mut values = durations[&service].clone();
        values.retain(|v| *v > 0);
        values.sort_unstable();
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        let bound = log2_bound(values[rank - 1]) as f64 / 1e9;
        let got = series.values[0];
        assert!(
            got > bound / 2.0 && got <= bound,
            "{service} p{q}: {got} not in ({}, {bound}]",
            bound / 2.0
        );
    }
}

#[tokio::test]
async fn buckets_are_right_closed_and_stamped_with_their_end() {
    let spans = traces(3);
    let first = spans.iter().map(|s| s.start_unix_nano).min().unwrap();
    let engine = engine_with(spans).await;
    // A range starting exactly at the first span leaves it out (buckets are open at
    // the start); one nanosecond earlier takes it in, in the first bucket.
    let count = |start: u64| {
        let engine = &engine;
        async move {
            let (response, _) = engine
                .metrics(
                    "{ } | count_over_time()",
                    &MetricsOptions {
                        start_unix_nano: Some(start),
                        end_unix_nano: Some(start + 100 * SECOND),
                        step_nano: Some(start),
                        instant: false,
                    },
                )
                .await
                .unwrap();
            response
        }
    };
    // With the step equal to the start, the range aligns to [0, 2·start] and the first
    // span sits exactly on the end of the first bucket.
    let response = count(first).await;
    assert_eq!(response.buckets.start, 0);
    assert_eq!(response.timestamps()[0], first / 1_000_000);
    assert!(response.series[0].values[0] >= 1.0);
}

#[tokio::test]
async fn by_with_missing_attributes_and_empty_ranges() {
    let spans = traces(11);
    let engine = engine_with(spans.clone()).await;
    let (response, _) = engine
        .metrics(
            "{ } | count_over_time() by (span.no_such_key)",
            &options(SECOND),
        )
        .await
        .unwrap();
    assert_eq!(response.series.len(), 1);
    assert_eq!(response.series[0].labels[0].0, "span.no_such_key");
    assert_eq!(value_text(response.series[0].labels[0].1.as_ref()), "nil");

    let empty = MetricsOptions {
        start_unix_nano: Some(5 * SECOND),
        end_unix_nano: Some(6 * SECOND),
        ..MetricsOptions::default()
    };
    let (response, _) = engine.metrics("{ } | rate()", &empty).await.unwrap();
    assert!(response.series.is_empty());
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["series"], serde_json::json!([]));
}

#[tokio::test]
async fn second_stages_and_arithmetic() {
    let spans = shop(300);
    let engine = engine_with(spans).await;
    let run = |q: &'static str| {
        let engine = &engine;
        async move { answer(&instant(engine, q).await) }
    };
    let all = run("{ } | count_over_time() by (resource.service.name)").await;
    let top = run("{ } | count_over_time() by (resource.service.name) | topk(3)").await;
    let mut largest: Vec<f64> = all.values().map(|v| v[0]).collect();
    largest.sort_by(|a, b| b.total_cmp(a));
    let mut got: Vec<f64> = top.values().map(|v| v[0]).collect();
    got.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(got, largest[..3]);
    let bottom = run("{ } | count_over_time() by (resource.service.name) | bottomk(2)").await;
    assert_eq!(bottom.len(), 2);
    assert!(bottom.values().all(|v| v[0] <= largest[largest.len() - 2]));

    let big = run("{ } | count_over_time() by (resource.service.name) > 100").await;
    assert_eq!(
        big.keys().collect::<Vec<_>>(),
        all.iter()
            .filter(|(_, v)| v[0] > 100.0)
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    );

    let ratio = run(
        "({ status = error } | count_over_time() by (resource.service.name)) / ({ } | count_over_time() by (resource.service.name))",
    )
    .await;
    let errors = run("{ status = error } | count_over_time() by (resource.service.name)").await;
    for (labels, v) in &ratio {
        assert!(
            close(v[0], errors[labels][0] / all[labels][0]),
            "{labels:?}"
        );
    }
    let scaled = run("({ } | count_over_time()) * 2 - 1").await;
    let total: f64 = all.values().map(|v| v[0]).sum();
    assert_eq!(scaled.values().next().unwrap()[0], total * 2.0 - 1.0);
}

#[tokio::test]
async fn compare_counts_values_in_the_selection_and_the_baseline() {
    let spans = shop(200);
    let engine = engine_with(spans.clone()).await;
    let response = instant(
        &engine,
        "{ kind = server } | compare({ status = error }, 2)",
    )
    .await;
    let got = answer(&response);
    // The reference: per group, per service, the server spans.
    let mut counts: BTreeMap<(&str, String), f64> = BTreeMap::new();
    for span in spans.iter().filter(|s| s.kind == kind::SERVER) {
        let group = if span.status_code == status::ERROR {
            "selection"
        } else {
            "baseline"
        };
        *counts
            .entry((group, by_value(span, "resource.service.name").unwrap()))
            .or_default() += 1.0;
    }
    let mut left_out = 0.0;
    for group in ["baseline", "selection"] {
        let mut ranked: Vec<(&String, f64)> = counts
            .iter()
            .filter(|((g, _), _)| *g == group)
            .map(|((_, service), n)| (service, *n))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let total: f64 = ranked.iter().map(|(_, n)| n).sum();
        assert_eq!(
            got[&vec![
                format!("__meta_type={group}_total"),
                "resource.service.name=nil".to_string()
            ]],
            vec![total],
            "{group} total"
        );
        for (i, (service, n)) in ranked.iter().enumerate() {
            let key = vec![
                format!("__meta_type={group}"),
                format!("resource.service.name={service}"),
            ];
            if i < 2 {
                assert_eq!(got.get(&key), Some(&vec![*n]), "{group} {service}");
            } else {
                assert!(!got.contains_key(&key), "only the top 2: {key:?}");
                left_out += n;
            }
        }
    }
    assert_eq!(
        got[&vec![
            "__meta_error=__too_many_values__".to_string(),
            "resource.service.name=nil".to_string()
        ]],
        vec![left_out]
    );
    // Durations and ids are not compared.
    assert!(got.keys().all(|k| !k[1].starts_with("duration=")
        && !k[1].starts_with("trace:id")
        && !k[1].starts_with("span:id")));
}

#[tokio::test]
async fn misplaced_queries_are_refused() {
    let engine = engine_with(traces(5)).await;
    let search = engine
        .metrics("{ status = error }", &MetricsOptions::default())
        .await
        .unwrap_err();
    assert_eq!(search.exit_code(), 2);
    let tiny_step = engine
        .metrics(
            "{ } | rate()",
            &MetricsOptions {
                step_nano: Some(1),
                ..options(SECOND)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(tiny_step.exit_code(), 2);
    assert!(
        tiny_step.to_string().contains("use a larger step"),
        "{tiny_step}"
    );
}

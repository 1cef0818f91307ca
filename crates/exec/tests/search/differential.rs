//! The engine against the reference evaluator on generated traces and generated
//! queries: filters of every kind, spanset `&&`/`||`, all structural operators,
//! aggregates, `by()`, `coalesce()`, over stores where the same attribute is a typed
//! column in one block and a fallback entry in another.

use std::collections::HashMap;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use proptest::prelude::*;
use traceql_exec::table::session_config;
use traceql_exec::{Engine, EngineError, ParsedQuery, SearchOptions, TimeRange};
use traceql_format::block::BlockOptions;
use traceql_gen::Rng;
use traceql_gen::random::{SPANSET_OPS, query, traces};

use crate::common::store_with;
use crate::reference;

type Answer = HashMap<String, Vec<Vec<String>>>;

async fn engine_answer(engine: &Engine, q: &str) -> Result<Option<Answer>, EngineError> {
    let options = SearchOptions {
        limit: 1_000_000,
        spans_per_spanset: 1_000_000,
        ..SearchOptions::default()
    };
    let response = match engine.search(q, &options).await {
        Ok(r) => r,
        Err(EngineError::Unsupported(_)) => return Ok(None),
        Err(EngineError::Query { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = HashMap::new();
    for trace in response.traces {
        let mut sets: Vec<Vec<String>> = trace
            .span_sets
            .iter()
            .map(|s| {
                assert_eq!(
                    s.matched as usize,
                    s.spans.len(),
                    "matched counts the spans of `{q}`"
                );
                let mut ids: Vec<String> = s.spans.iter().map(|sp| sp.span_id.clone()).collect();
                ids.sort();
                ids
            })
            .collect();
        sets.sort();
        out.insert(trace.trace_id, sets);
    }
    Ok(Some(out))
}

/// Every match of `q` by [`Engine::search_batches`]: the answer by trace and spanset,
/// and each row's text but for its spanset number, sorted; with the same rows of
/// [`SearchResults::record_batch`] over every match, which assembles traces.
async fn batches_answer(engine: &Engine, q: &str) -> Option<(Answer, Vec<String>, Vec<String>)> {
    let parsed = ParsedQuery::parse(q).ok()?;
    let mut batches = Vec::new();
    let range = TimeRange::default();
    match engine
        .search_batches(&parsed, &range, |b| {
            batches.push(b);
            Ok(())
        })
        .await
    {
        Ok(_) => {}
        Err(EngineError::Unsupported(_)) => return None,
        Err(e) => panic!("`{q}` failed: {e}"),
    }
    let options = SearchOptions {
        limit: usize::MAX,
        spans_per_spanset: usize::MAX,
        ..SearchOptions::default()
    };
    let (results, _) = engine.search_results(q, &options).await.unwrap();
    let assembled = results
        .record_batch(&results.columns(), 0..results.len())
        .unwrap();
    let mut sets: HashMap<(String, String), Vec<String>> = HashMap::new();
    for b in &batches {
        for row in 0..b.num_rows() {
            let text =
                |name: &str| array_value_to_string(b.column_by_name(name).unwrap(), row).unwrap();
            sets.entry((text("trace_id"), text("spanset")))
                .or_default()
                .push(text("span_id"));
        }
    }
    let mut answer: Answer = HashMap::new();
    for ((trace, _), mut ids) in sets {
        ids.sort();
        answer.entry(trace).or_default().push(ids);
    }
    for sets in answer.values_mut() {
        sets.sort();
    }
    Some((answer, rows_text(&batches), rows_text(&[assembled])))
}

/// Each row of `batches` as text, columns by name, without the spanset number; sorted.
fn rows_text(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for b in batches {
        for row in 0..b.num_rows() {
            let fields: Vec<String> = b
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name() != "spanset")
                .map(|(i, f)| {
                    let value = array_value_to_string(b.column(i), row).unwrap();
                    format!("{}={value}", f.name())
                })
                .collect();
            rows.push(fields.join(" "));
        }
    }
    rows.sort();
    rows
}

fn check(seed: u64) {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let queries: Vec<String> = (0..8).map(|_| query(&mut rng)).collect();
    check_queries(seed, &queries);
}

/// The engine against the reference on the traces of `seed`, for `queries`.
fn check_queries(seed: u64, queries: &[String]) {
    let spans = traces(seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let layouts = [
        BlockOptions::default(),
        // Small blocks where rare keys fall back to attribute lists in some blocks.
        BlockOptions {
            spans_per_block: 6,
            typed_min_fraction: 0.3,
            ..BlockOptions::default()
        },
    ];
    for options in &layouts {
        // Tiny batches split traces between batches, as large scans do.
        let batch_size = if options.spans_per_block < 100 {
            3
        } else {
            8192
        };
        let config = session_config().with_batch_size(batch_size);
        let engine = runtime.block_on(async {
            Engine::with_config(store_with(spans.clone(), options).await, config)
                .await
                .unwrap()
        });
        for q in queries {
            let Ok(parsed) = traceql_parser::parse_and_validate(q) else {
                continue;
            };
            let Ok(want) = reference::search(&spans, &parsed) else {
                continue;
            };
            let got = runtime.block_on(engine_answer(&engine, q));
            let got = match got {
                Ok(Some(got)) => got,
                Ok(None) => continue,
                Err(e) => panic!("seed {seed}: `{q}` failed: {e}"),
            };
            assert_eq!(
                got, want,
                "seed {seed}, blocks of {} spans: `{q}`",
                options.spans_per_block
            );
            // Every match as Arrow batches straight from the plan: the same spans, in
            // the same spansets, with the same content as assembled traces give.
            if let Some((answer, rows, assembled)) = runtime.block_on(batches_answer(&engine, q)) {
                assert_eq!(answer, want, "seed {seed}: search_batches of `{q}`");
                assert_eq!(rows, assembled, "seed {seed}: search_batches of `{q}`");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_reference(seed in any::<u64>()) {
        check(seed);
    }
}

#[test]
fn string_arrays_compare_as_the_reference_compares_them() {
    // Equality with a string is a native filter where the array is a typed column,
    // the field-expression function elsewhere; the other tests are always the latter.
    let queries: Vec<String> = [
        r#"{ span.tags = "x" }"#,
        r#"{ .tags = "y" && .a = 1 }"#,
        r#"{ .tags = "z" || .b = "x" }"#,
        r#"{ !(span.tags = "x") }"#,
        r#"{ .tags != "x" }"#,
        r#"{ .tags =~ "x|y" }"#,
    ]
    .map(String::from)
    .to_vec();
    for seed in 0..12 {
        check_queries(seed, &queries);
    }
}

#[test]
fn generated_queries_cover_every_operator_and_mostly_validate() {
    let mut rng = Rng::new(1);
    let queries: Vec<String> = (0..2000).map(|_| query(&mut rng)).collect();
    for op in SPANSET_OPS {
        assert!(
            queries.iter().any(|q| q.contains(&format!(" {op} "))),
            "no query uses {op}"
        );
    }
    let valid = queries
        .iter()
        .filter(|q| traceql_parser::parse_and_validate(q).is_ok())
        .count();
    assert!(
        valid * 10 >= queries.len() * 9,
        "only {valid} of 2000 generated queries are valid"
    );
}

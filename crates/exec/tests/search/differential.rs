//! The engine against the reference evaluator on generated traces and generated
//! queries: filters of every kind, spanset `&&`/`||`, all structural operators,
//! aggregates, `by()`, `coalesce()`, over stores where the same attribute is a typed
//! column in one block and a fallback entry in another.

use std::collections::HashMap;

use proptest::prelude::*;
use traceql_exec::table::session_config;
use traceql_exec::{Engine, EngineError, SearchOptions};
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

fn check(seed: u64) {
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
    let mut rng = Rng::new(seed ^ 0x5eed);
    let queries: Vec<String> = (0..8).map(|_| query(&mut rng)).collect();
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
        for q in &queries {
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

//! The engine against the reference evaluator on generated traces and generated
//! queries: filters of every kind, spanset `&&`/`||`, all structural operators,
//! aggregates, `by()`, `coalesce()`, over stores where the same attribute is a typed
//! column in one block and a fallback entry in another.

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use traceql_exec::table::session_config;
use traceql_exec::{Engine, EngineError, SearchOptions};
use traceql_format::block::BlockOptions;
use traceql_format::model::{Event, Resource, Scope, Span};
use traceql_format::value::{KeyValue, Value};
use traceql_gen::Rng;

use crate::common::store_with;
use crate::reference;

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.range(0, items.len() as u64 - 1) as usize]
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value,
    }
}

/// Small traces with random shapes: roots, children, orphans whose parent is missing,
/// repeated keys, arrays, events, attributes at span and resource level.
pub fn traces(seed: u64) -> Vec<Span> {
    let mut rng = Rng::new(seed);
    let resources: Vec<Arc<Resource>> = ["api", "db", "web"]
        .iter()
        .map(|name| {
            let mut attributes = vec![kv("service.name", Value::Str(name.to_string()))];
            if rng.chance(0.5) {
                attributes.push(kv("a", Value::Int(rng.range(0, 3) as i64)));
            }
            if rng.chance(0.3) {
                attributes.push(kv("b", Value::Str(pick(&mut rng, &["x", "y"]).to_string())));
            }
            Arc::new(Resource {
                attributes,
                ..Resource::default()
            })
        })
        .collect();
    let scope = Arc::new(Scope {
        name: "lib".into(),
        version: "1.0".into(),
        ..Scope::default()
    });
    let mut spans = Vec::new();
    for t in 0..rng.range(1, 6) {
        let trace_id: [u8; 16] = std::array::from_fn(|i| {
            if i == 15 {
                t as u8 + 1
            } else if i == 0 {
                (seed % 251) as u8
            } else {
                0
            }
        });
        let n = rng.range(1, 8) as usize;
        let base = 1_000_000_000_000 + t * 1_000_000_000;
        for i in 0..n {
            let span_id: [u8; 8] = [t as u8 + 1, i as u8 + 1, 0, 0, 0, 0, 0, 7];
            let parent = match rng.range(0, 9) {
                0 | 1 if i > 0 => None,
                2 => Some([t as u8 + 1, 99, 0, 0, 0, 0, 0, 7]),
                _ if i == 0 => None,
                _ => Some([
                    t as u8 + 1,
                    rng.range(0, i as u64 - 1) as u8 + 1,
                    0,
                    0,
                    0,
                    0,
                    0,
                    7,
                ]),
            };
            let mut attributes = Vec::new();
            if rng.chance(0.6) {
                attributes.push(kv("a", Value::Int(rng.range(0, 3) as i64)));
            }
            if rng.chance(0.5) {
                attributes.push(kv(
                    "b",
                    Value::Str(pick(&mut rng, &["x", "y", "z", "1"]).to_string()),
                ));
            }
            if rng.chance(0.4) {
                attributes.push(kv("c", Value::Float(rng.range(0, 4) as f64 / 2.0)));
            }
            if rng.chance(0.3) {
                attributes.push(kv("d", Value::Bool(rng.chance(0.5))));
            }
            if rng.chance(0.3) {
                let items = (0..rng.range(1, 3))
                    .map(|_| rng.range(0, 3) as i64)
                    .collect();
                attributes.push(kv("arr", Value::IntArray(items)));
            }
            if rng.chance(0.15) {
                attributes.push(kv("a", Value::Str("1".into())));
            }
            let start = base + rng.range(0, 50) * 1_000_000;
            let events = (0..rng.range(0, 2))
                .map(|k| Event {
                    time_unix_nano: start + k * 1_000_000,
                    name: pick(&mut rng, &["exception", "retry"]).to_string(),
                    attributes: if rng.chance(0.5) {
                        vec![kv("e", Value::Int(rng.range(0, 2) as i64))]
                    } else {
                        vec![]
                    },
                    dropped_attributes_count: 0,
                })
                .collect();
            spans.push(Span {
                trace_id,
                span_id,
                parent_span_id: parent,
                trace_state: String::new(),
                flags: 0,
                name: pick(&mut rng, &["GET /", "db.query", "auth", "pay"]).to_string(),
                kind: rng.range(0, 5) as i8,
                start_unix_nano: start,
                end_unix_nano: start + rng.range(1, 40) * 1_000_000,
                attributes,
                dropped_attributes_count: 0,
                events,
                dropped_events_count: 0,
                links: vec![],
                dropped_links_count: 0,
                status_code: rng.range(0, 2) as i8,
                status_message: if rng.chance(0.2) {
                    "boom".into()
                } else {
                    String::new()
                },
                resource: Arc::clone(pick(&mut rng, &resources)),
                scope: Arc::clone(&scope),
            });
        }
    }
    spans
}

/// A random boolean field expression.
fn field(rng: &mut Rng, depth: u32) -> String {
    let choice = rng.range(0, if depth == 0 { 5 } else { 8 });
    let cmp = ["=", "!=", "<", "<=", ">", ">="];
    match choice {
        0 | 1 => {
            let attr = pick(
                rng,
                &["span.a", ".a", "resource.a", ".arr", "event.e", ".c"],
            );
            let value = pick(rng, &["0", "1", "2", "1.5", "\"1\"", "2.0"]);
            format!("{attr} {} {value}", pick(rng, &cmp))
        }
        2 => {
            let attr = pick(
                rng,
                &[
                    ".b",
                    "span.b",
                    "resource.b",
                    "name",
                    "statusMessage",
                    "resource.service.name",
                    "event:name",
                    "trace:rootService",
                ],
            );
            let value = pick(
                rng,
                &[
                    "\"x\"",
                    "\"y\"",
                    "\"1\"",
                    "\"auth\"",
                    "\"api\"",
                    "\"exception\"",
                    "\"\"",
                ],
            );
            format!("{attr} {} {value}", pick(rng, &["=", "!=", "<", ">"]))
        }
        3 => match rng.range(0, 4) {
            0 => format!(
                "status {} {}",
                pick(rng, &["=", "!="]),
                pick(rng, &["error", "ok", "unset"])
            ),
            1 => format!(
                "kind {} {}",
                pick(rng, &["=", "!="]),
                pick(rng, &["server", "client", "internal"])
            ),
            2 => format!(
                "duration {} {}",
                pick(rng, &cmp),
                pick(rng, &["10ms", "20ms", "5ms"])
            ),
            3 => format!(".d = {}", pick(rng, &["true", "false"])),
            _ => format!("event:timeSinceStart {} 0", pick(rng, &[">", "="])),
        },
        4 => format!(
            "{} {} nil",
            pick(
                rng,
                &[".a", "span.b", "resource.b", "event.e", ".arr", ".d"]
            ),
            pick(rng, &["=", "!="])
        ),
        5 => match rng.range(0, 2) {
            0 => format!(
                "{} {} \"{}\"",
                pick(rng, &[".b", "name"]),
                pick(rng, &["=~", "!~"]),
                pick(rng, &["x|y", ".*a.*", "db\\..*"])
            ),
            1 => format!(
                "{} {} {} {} {}",
                pick(rng, &[".a", ".c", "span.a"]),
                pick(rng, &["+", "-", "*", "/"]),
                pick(rng, &["1", "2", "0.5"]),
                pick(rng, &cmp),
                pick(rng, &["1", "2", "3"])
            ),
            _ => format!(
                "{} = {}",
                pick(rng, &[".a", "span.a"]),
                pick(rng, &["resource.a", ".c"])
            ),
        },
        6 => format!("({} && {})", field(rng, depth - 1), field(rng, depth - 1)),
        7 => format!("({} || {})", field(rng, depth - 1), field(rng, depth - 1)),
        _ => format!("!({})", field(rng, depth - 1)),
    }
}

const SPANSET_OPS: [&str; 17] = [
    "&&", "||", ">", "<", ">>", "<<", "~", "!>", "!<", "!>>", "!<<", "!~", "&>", "&<", "&>>",
    "&<<", "&~",
];

fn spanset(rng: &mut Rng, depth: u32) -> String {
    match rng.range(0, if depth == 0 { 3 } else { 5 }) {
        0 => "{ }".into(),
        1..=3 => format!("{{ {} }}", field(rng, 1)),
        4 => format!(
            "({} | count() > {})",
            spanset(rng, depth - 1),
            rng.range(0, 2)
        ),
        _ => format!(
            "({} {} {})",
            spanset(rng, depth - 1),
            pick(rng, &SPANSET_OPS),
            spanset(rng, depth - 1)
        ),
    }
}

/// A random search query.
pub fn query(rng: &mut Rng) -> String {
    let mut q = spanset(rng, 2);
    for _ in 0..rng.range(0, 2) {
        let stage = match rng.range(0, 10) {
            0 => format!("count() > {}", rng.range(0, 3)),
            1 => format!("count() = {}", rng.range(1, 3)),
            2 => "avg(duration) > 10ms".into(),
            3 => "max(.a) >= 2".into(),
            4 => "sum(.c) > 1".into(),
            5 => "min(duration) < 8ms".into(),
            6 => format!(
                "by({})",
                pick(rng, &[".b", "resource.service.name", "span.a", "status"])
            ),
            7 => "coalesce()".into(),
            8 => "select(.a, status)".into(),
            _ => format!("{{ {} }}", field(rng, 1)),
        };
        q = format!("{q} | {stage}");
    }
    q
}

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

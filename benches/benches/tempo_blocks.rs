//! traceql's Engine API on Grafana Tempo's own blocks, beside Tempo's recorded times.
//!
//! `cargo bench -p traceql-benches --bench tempo_blocks [-- --runs N]` (needs Tempo's
//! shared data: `../shared/tempo-blocks`, or `TRACEQL_SHARED_DIR`). For every query of
//! `queries.yaml` (72 searches, 8 metrics queries) and each block version, it opens one
//! engine on Tempo's block as Tempo wrote it and one on the same block converted to
//! traceql's format (in memory), runs the query as Tempo's recorded requests did (every
//! match and every matched span, the same window; metrics at a 60 s step) and prints the
//! best of `--runs` (default 5) times, answer serialised to JSON included, beside
//! `http_seconds`, the wall time of Tempo's one recorded HTTP request (a rough
//! reference: one run on the machine the fixtures were made on). The answers are
//! checked by `cargo test` (`crates/exec/tests/search/tempo_blocks.rs`);
//! `benches/compare/tempo_blocks.py` measures the same queries whole process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use traceql_benches::{best_of, runtime};
use traceql_exec::convert::convert;
use traceql_exec::metrics::MetricsOptions;
use traceql_exec::store::Store;
use traceql_exec::{Engine, SearchOptions};
use traceql_format::block::BlockOptions;

#[derive(Deserialize)]
struct Queries {
    queries: Vec<Query>,
}

#[derive(Deserialize)]
struct Query {
    id: String,
    kind: String,
    query: String,
    v4: Recorded,
    v5: Recorded,
}

#[derive(Deserialize)]
struct Recorded {
    http_seconds: f64,
}

const START: u64 = 1_795_774_201;
const END: u64 = 1_795_776_599;
const SECOND: u64 = 1_000_000_000;

/// `shared/tempo-blocks`, or `None` (announced) when it is missing.
fn tempo_blocks() -> Option<PathBuf> {
    let root = std::env::var_os("TRACEQL_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = root.join("tempo-blocks");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "{} is missing: this benchmark needs Tempo's shared data (set TRACEQL_SHARED_DIR)",
            dir.display()
        );
        None
    }
}

/// The value of `--runs`, else 5.
fn runs_arg() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
}

/// Runs `q` on `engine` and serialises its answer; an error if it fails.
async fn answer(engine: &Engine, q: &Query) -> Result<usize, String> {
    if q.kind == "metrics" {
        let options = MetricsOptions {
            start_unix_nano: Some(START * SECOND),
            end_unix_nano: Some(END * SECOND),
            step_nano: Some(60 * SECOND),
            instant: false,
        };
        let (response, _) = engine
            .metrics(&q.query, &options)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::to_vec(&response)
            .map(|v| v.len())
            .map_err(|e| e.to_string())
    } else {
        let options = SearchOptions {
            limit: 100_000,
            spans_per_spanset: 100_000,
            start_unix_nano: Some(START * SECOND),
            end_unix_nano: Some(END * SECOND),
            ..SearchOptions::default()
        };
        let response = engine
            .search(&q.query, &options)
            .await
            .map_err(|e| e.to_string())?;
        serde_json::to_vec(&response)
            .map(|v| v.len())
            .map_err(|e| e.to_string())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let Some(dir) = tempo_blocks() else {
        return;
    };
    let runs = runs_arg();
    let text = std::fs::read_to_string(dir.join("queries.yaml")).expect("queries.yaml");
    let queries = serde_norway::from_str::<Queries>(&text)
        .expect("queries.yaml")
        .queries;
    let runtime = runtime();
    let engines: Vec<(Engine, Engine)> = ["vparquet4", "vparquet5"]
        .iter()
        .map(|v| {
            runtime.block_on(async {
                let tempo = Store::local(&dir.join(v), false).expect("Tempo block");
                let converted = Store::in_memory(&format!("converted-{v}"));
                convert(&tempo, &converted, &BlockOptions::default(), &|_| {})
                    .await
                    .expect("convert");
                (
                    Engine::with_store(tempo).await.expect("engine"),
                    Engine::with_store(converted).await.expect("engine"),
                )
            })
        })
        .collect();
    println!(
        "| id | v4 Tempo HTTP | v4 Engine API, Tempo block | v4 converted \
         | v5 Tempo HTTP | v5 Engine API, Tempo block | v5 converted |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (mut at_or_below, mut at_or_below_converted, mut ran) = (0, 0, 0);
    let mut ratios = Vec::new();
    let mut slower = Vec::new();
    for q in &queries {
        let mut cells = Vec::new();
        for (version, (tempo, converted)) in ["v4", "v5"].iter().zip(&engines) {
            let http = if *version == "v4" { &q.v4 } else { &q.v5 }.http_seconds * 1000.0;
            let time = |engine: &Engine| {
                let (best, outcome) = best_of(runs, || runtime.block_on(answer(engine, q)));
                outcome.map(|_| ms(best))
            };
            match (time(tempo), time(converted)) {
                (Ok(on_tempo), Ok(on_converted)) => {
                    ran += 1;
                    at_or_below += usize::from(on_tempo <= http);
                    at_or_below_converted += usize::from(on_converted <= http);
                    ratios.push(on_tempo / on_converted);
                    if on_tempo > http {
                        slower.push(format!(
                            "{version} {} ({on_tempo:.1} vs {http:.0} ms)",
                            q.id
                        ));
                    }
                    cells.push(format!("{http:.0} | {on_tempo:.1} | {on_converted:.1}"));
                }
                (Err(e), _) | (_, Err(e)) => cells.push(format!("{http:.0} | {e} | ")),
            }
        }
        println!("| {} | {} |", q.id, cells.join(" | "));
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    let largest = ratios.last().copied().unwrap_or(f64::NAN);
    println!(
        "\nat or below Tempo's recorded time: {at_or_below} of {ran} on Tempo's blocks, \
         {at_or_below_converted} of {ran} converted"
    );
    println!("Tempo block / converted block: median {median:.2}x, largest {largest:.2}x");
    if !slower.is_empty() {
        println!("slower than Tempo: {}", slower.join(", "));
    }
}

//! The traceql Engine API on an engine kept open, as a service embedding traceql runs
//! it: the warm side of `benches/compare/duckdb_side_by_side.py`.
//!
//! ```text
//! warm_engine --data DIR --queries FILE [--runs N] [--step SECONDS]
//! ```
//!
//! Opens one engine over the store `DIR`, then for each line of `FILE` (a TraceQL
//! query) runs it once to warm up and `N` times more (default 5), and prints one JSON
//! line: the query, the best wall time in milliseconds, and what it found (a search:
//! every match with every matched span, counted in spans; a metrics query at a step of
//! `SECONDS`, default 60: its series). A search's answer is every matched span as Arrow
//! record batches (`Engine::search_batches`), as DuckDB's side fetches its answer as
//! Arrow, then dropped; the first run also counts the distinct spans found.
//!
//! The program uses mimalloc, as the `traceql` binary does and as docs/performance.md
//! advises a program embedding the engine to (DuckDB brings its own allocator).

use std::collections::HashSet;
use std::time::Instant;

use datafusion::arrow::array::StringArray;
use traceql_exec::metrics::MetricsOptions;
use traceql_exec::{Engine, ParsedQuery, TimeRange};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line.
struct Args {
    data: String,
    queries: String,
    runs: usize,
    step_s: u64,
}

fn args() -> Result<Args, String> {
    let mut given = std::env::args().skip(1);
    let (mut data, mut queries, mut runs, mut step_s) = (None, None, 5, 60);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => data = Some(value()?),
            "--queries" => queries = Some(value()?),
            "--runs" => runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--step" => step_s = value()?.parse().map_err(|e| format!("--step: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        data: data.ok_or("--data DIR is required")?,
        queries: queries.ok_or("--queries FILE is required")?,
        runs: runs.max(1),
        step_s: step_s.max(1),
    })
}

/// What one run of `query` found: spans matched (distinct spans if `count`, else
/// rows), or series.
async fn run(
    engine: &Engine,
    query: &str,
    step_s: u64,
    count: bool,
) -> Result<(&'static str, usize), String> {
    let parsed = ParsedQuery::parse(query).map_err(|e| e.to_string())?;
    if parsed.is_metrics() {
        let options = MetricsOptions {
            step_nano: Some(step_s * 1_000_000_000),
            ..MetricsOptions::default()
        };
        let (response, _) = engine
            .metrics(query, &options)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(("series", response.series.len()));
    }
    let (mut rows, mut distinct) = (0, HashSet::new());
    engine
        .search_batches(&parsed, &TimeRange::default(), |batch| {
            rows += batch.num_rows();
            if count {
                let column = |name: &str| {
                    batch
                        .column_by_name(name)
                        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                        .cloned()
                };
                if let (Some(traces), Some(spans)) = (column("trace_id"), column("span_id")) {
                    for row in 0..batch.num_rows() {
                        distinct
                            .insert((traces.value(row).to_string(), spans.value(row).to_string()));
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(("spans", if count { distinct.len() } else { rows }))
}

fn main() -> std::process::ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("warm_engine: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    runtime.block_on(async {
        let engine = match Engine::open(&args.data).await {
            Ok(engine) => engine,
            Err(e) => {
                eprintln!("warm_engine: {}: {e}", args.data);
                return std::process::ExitCode::FAILURE;
            }
        };
        let text = match std::fs::read_to_string(&args.queries) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("warm_engine: {}: {e}", args.queries);
                return std::process::ExitCode::FAILURE;
            }
        };
        for query in text.lines().map(str::trim).filter(|q| !q.is_empty()) {
            let mut best = f64::INFINITY;
            let mut found = ("spans", 0);
            for i in 0..=args.runs {
                let started = Instant::now();
                // The first run warms the engine's caches up and counts what it found.
                match run(&engine, query, args.step_s, i == 0).await {
                    Ok(f) if i == 0 => found = f,
                    Ok(_) => best = best.min(started.elapsed().as_secs_f64() * 1e3),
                    Err(e) => {
                        eprintln!("warm_engine: `{query}`: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                }
            }
            let line = serde_json::json!({"query": query, "best_ms": best, found.0: found.1});
            println!("{line}");
        }
        std::process::ExitCode::SUCCESS
    })
}

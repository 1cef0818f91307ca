//! Shared data for the workspace benchmarks.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use traceql_exec::ingest::write_traces;
use traceql_exec::store::Store;
use traceql_format::block::BlockOptions;
use traceql_format::model::Trace;
use traceql_gen::Generator;

/// The mixed query corpus in `corpus/queries.traceql`: realistic searches, structural
/// queries, pipelines and metrics queries of our own.
pub fn query_corpus() -> Vec<&'static str> {
    include_str!("../corpus/queries.traceql")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// A store of `traces` generated traces (about 14 spans each) over one hour, written
/// once into `target/bench-data/search-<traces>` and reused; with its span count.
pub fn generated_store(traces: usize, runtime: &tokio::runtime::Runtime) -> (Store, usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bench-data")
        .join(format!("search-{traces}"));
    let ready = dir.join("READY");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let mut generator = Generator::new(
            1,
            traceql_gen::EPOCH_UNIX_NANO,
            3_600_000_000_000 / traces as u64,
        );
        let generated: Vec<Trace> = (0..traces).map(|_| generator.next_trace()).collect();
        let store = Store::local(&dir, true).expect("store");
        let mut n = 0;
        runtime
            .block_on(write_traces(
                &store,
                generated,
                &BlockOptions::default(),
                || {
                    n += 1;
                    format!("00000000-0000-0000-0000-{n:012}")
                },
                &|_| {},
            ))
            .expect("write");
        std::fs::write(&ready, "").expect("marker");
    }
    let store = Store::local(&dir, false).expect("store");
    let spans = runtime
        .block_on(store.list_blocks())
        .expect("blocks")
        .iter()
        .map(|b| b.spans as usize)
        .sum();
    (store, spans)
}

/// The number of traces to generate: the first argument that is not a flag, else
/// 72,000 (about a million spans).
pub fn traces_arg() -> usize {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(72_000)
}

/// A multi-threaded runtime for the benchmarks.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `f` `runs` times; the best wall time and the last result.
pub fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        last = Some(f());
        best = best.min(started.elapsed());
    }
    (best, last.expect("ran at least once"))
}

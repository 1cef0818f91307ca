//! Metrics query speed over the generated store of the search benchmark.
//!
//! `cargo bench -p traceql-benches --bench metrics -- [TRACES]` (default 72,000 traces,
//! about a million spans, one hour). For each query it prints the best wall time of five
//! runs over the whole hour with the default step (15 s, 242 points), spans of the store
//! per second at that time, and the number of series.

use traceql_benches::{best_of, generated_store, runtime, traces_arg};
use traceql_exec::Engine;
use traceql_exec::metrics::MetricsOptions;

const QUERIES: &[&str] = &[
    "{ } | rate() by (resource.service.name)",
    "{ } | quantile_over_time(duration, .5, .99)",
    "{ } | count_over_time()",
    "{ status = error } | rate() by (resource.service.name)",
    "{ kind = server } | avg_over_time(duration) by (span.http.route)",
    "{ } | histogram_over_time(duration)",
    "{ kind = server } | quantile_over_time(duration, .99) by (resource.service.name)",
    "({ status = error } | rate()) / ({ } | rate())",
];

fn main() {
    let traces = traces_arg();
    let runtime = runtime();
    let (store, spans) = generated_store(traces, &runtime);
    let engine = runtime.block_on(Engine::with_store(store)).expect("engine");
    println!("{spans} spans in {} blocks", engine.blocks().count());
    println!(
        "{:>10} {:>14} {:>7} {:>7}  query",
        "best ms", "spans/s", "series", "points"
    );
    let options = MetricsOptions::default();
    for query in QUERIES {
        let (best, (response, _)) = best_of(5, || {
            runtime
                .block_on(engine.metrics(query, &options))
                .unwrap_or_else(|e| panic!("`{query}`: {e}"))
        });
        println!(
            "{:>10.1} {:>14.0} {:>7} {:>7}  {query}",
            best.as_secs_f64() * 1e3,
            spans as f64 / best.as_secs_f64(),
            response.series.len(),
            response.buckets.count(),
        );
    }
}

//! Search speed per query shape over a generated store of realistic shape.
//!
//! `cargo bench -p traceql-benches --bench search -- [TRACES]` (default 72,000 traces,
//! about a million spans). The store is generated once into
//! `target/bench-data/search-<TRACES>` and reused. For each query shape, with the
//! default limit of 20 traces (newest first, then slowest first) and asking for every
//! match, it prints the best wall time of five runs, spans of the store per second at
//! that time, traces returned, spans the scan produced after pruning, rounds of the
//! search, and the requests and bytes fetched from the store.
//!
//! With `--s3` (`cargo bench -p traceql-benches --bench search -- --s3`) the blocks are
//! also uploaded to a moto S3 server on loopback and the suite runs again against it.

use traceql_benches::{best_of, generated_store, runtime, traces_arg};
use traceql_exec::store::{Store, StoreOptions};
use traceql_exec::{Engine, Order, SearchOptions};
use traceql_format::block::EncodedBlock;
use traceql_testkit::S3TestServer;

const SHAPES: &[(&str, &str)] = &[
    ("all spans", "{ }"),
    ("count per trace", "{ } | count() > 3"),
    ("intrinsic match", "{ status = error }"),
    ("intrinsic no-match", "{ name = \"no-such-operation\" }"),
    (
        "resource attribute match",
        "{ resource.service.name = \"checkout\" }",
    ),
    (
        "resource attribute no-match",
        "{ resource.service.name = \"no-such-service\" }",
    ),
    ("span attribute match", "{ span.http.status_code >= 500 }"),
    (
        "span attribute no-match",
        "{ span.http.route = \"/no/such/route\" }",
    ),
    ("regex", "{ span.http.route =~ \"/product/.*\" }"),
    ("regex no-match", "{ span.http.route =~ \"/api/.*\" }"),
    (
        "descendant",
        "{ resource.service.name = \"frontend\" } >> { status = error }",
    ),
    ("spanset and", "{ kind = server } && { status = error }"),
    (
        "average duration",
        "{ kind = server } | avg(duration) > 20ms",
    ),
    (
        "select",
        "{ status = error } | select(span.http.route, resource.service.name)",
    ),
];

/// The same blocks in a bucket of a local moto server.
fn copy_to_s3(local: &Store, server: &S3TestServer, runtime: &tokio::runtime::Runtime) -> Store {
    server.create_bucket("bench").expect("bucket");
    let s3 = Store::remote(
        "s3://bench/search",
        &StoreOptions::s3_compatible(server.endpoint(), server.credentials()),
    )
    .expect("s3 store");
    runtime.block_on(async {
        for mut meta in local.list_blocks().await.expect("blocks") {
            let data = local.read_data(&meta.id).await.expect("data").to_vec();
            // Copied one by one, outside the transaction that wrote them: visible by
            // themselves (a block naming a transaction whose record is not copied is
            // hidden).
            meta.txn = None;
            s3.write_block(&EncodedBlock { data, meta })
                .await
                .expect("upload");
        }
    });
    s3
}

/// Runs every shape with the default limit (newest and slowest first) and asking for
/// every match, and prints a table for each.
fn run_suite(engine: &Engine, spans: usize, runtime: &tokio::runtime::Runtime) {
    for (title, limit, order) in [
        ("newest 20 traces (the default search)", 20, Order::Newest),
        ("slowest 20 traces (--order slowest)", 20, Order::Slowest),
        (
            "every match (limit 1,000,000: a full scan unless blocks are skipped)",
            1_000_000,
            Order::Newest,
        ),
    ] {
        println!("\n{title}");
        println!(
            "{:<28} {:>10} {:>14} {:>7} {:>9} {:>6} {:>8} {:>11}  query",
            "shape", "best ms", "spans/s", "traces", "scanned", "rounds", "requests", "fetched"
        );
        let options = SearchOptions {
            limit,
            order,
            ..SearchOptions::default()
        };
        for (shape, query) in SHAPES {
            let (best, (response, stats)) = best_of(5, || {
                runtime
                    .block_on(engine.search_with_stats(query, &options))
                    .unwrap_or_else(|e| panic!("`{query}`: {e}"))
            });
            println!(
                "{shape:<28} {:>10.3} {:>14.0} {:>7} {:>9} {:>6} {:>8} {:>11}  {query}",
                best.as_secs_f64() * 1e3,
                spans as f64 / best.as_secs_f64(),
                response.traces.len(),
                stats.spans_scanned,
                stats.rounds,
                stats.io.requests,
                stats.io.bytes_fetched,
            );
        }
    }
}

fn main() {
    let traces = traces_arg();
    let s3 = std::env::args().any(|a| a == "--s3");
    let runtime = runtime();
    let (store, spans) = generated_store(traces, &runtime);
    let server = s3.then(|| S3TestServer::start().expect("moto server"));
    let remote = server
        .as_ref()
        .map(|server| copy_to_s3(&store, server, &runtime));
    let engine = runtime.block_on(Engine::with_store(store)).expect("engine");
    println!(
        "{spans} spans in {} blocks; requests and bytes fetched are of the last of five runs",
        engine.blocks().count()
    );
    println!("\n== local disk");
    run_suite(&engine, spans, &runtime);
    if let Some(remote) = remote {
        let engine = runtime
            .block_on(Engine::with_store(remote))
            .expect("engine");
        println!("\n== S3 (moto on loopback)");
        run_suite(&engine, spans, &runtime);
    }
}

//! Shared helpers: stores built from spans, conformance data paths.

use std::collections::BTreeMap;
use std::path::PathBuf;

use traceql_exec::Engine;
use traceql_exec::ingest::write_traces;
use traceql_exec::store::Store;
use traceql_format::block::BlockOptions;
use traceql_format::model::Span;
use traceql_format::model::Trace;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Spans grouped into traces, in trace id order.
pub fn traces(spans: Vec<Span>) -> Vec<Trace> {
    let mut by_id: BTreeMap<[u8; 16], Trace> = BTreeMap::new();
    for span in spans {
        by_id.entry(span.trace_id).or_default().push(span);
    }
    by_id.into_values().collect()
}

/// Writes `traces` to `store` in blocks numbered 1, 2, …, so that the same traces
/// make the same blocks in every store.
pub async fn write_numbered(store: &Store, traces: Vec<Trace>, options: &BlockOptions) {
    write_named(store, traces, options, |n| {
        format!("00000000-0000-0000-0000-{n:012}")
    })
    .await;
}

/// Writes `traces` to `store` in blocks whose ids `id` makes from their numbers 1, 2, ….
pub async fn write_named(
    store: &Store,
    traces: Vec<Trace>,
    options: &BlockOptions,
    id: impl Fn(usize) -> String,
) {
    let mut n = 0;
    write_traces(
        store,
        traces,
        options,
        || {
            n += 1;
            id(n)
        },
        &|_| {},
    )
    .await
    .expect("blocks are written");
}

/// An in-memory store holding `spans`, in blocks of about `spans_per_block` spans.
pub async fn store_with(spans: Vec<Span>, options: &BlockOptions) -> Store {
    let store = Store::in_memory("test");
    write_numbered(&store, traces(spans), options).await;
    store
}

/// An engine over an in-memory store holding `spans` in one block.
pub async fn engine_with(spans: Vec<Span>) -> Engine {
    let store = store_with(spans, &BlockOptions::default()).await;
    Engine::with_store(store).await.expect("engine opens")
}

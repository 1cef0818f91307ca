//! Shared helpers: stores built from spans, conformance data paths.

use std::collections::BTreeMap;
use std::path::PathBuf;

use traceql_exec::Engine;
use traceql_exec::block::{BlockOptions, Trace};
use traceql_exec::ingest::write_traces;
use traceql_exec::model::Span;
use traceql_exec::store::Store;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of Tempo's conformance data (`../shared/conformance`, or
/// `$TRACEQL_CONFORMANCE_DIR`).
pub fn conformance(file: &str) -> PathBuf {
    let dir = std::env::var_os("TRACEQL_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/conformance"));
    let path = dir.join(file);
    assert!(
        path.exists(),
        "conformance data {} is required",
        path.display()
    );
    path
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
    let mut n = 0;
    write_traces(
        store,
        traces,
        options,
        || {
            n += 1;
            format!("00000000-0000-0000-0000-{n:012}")
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

//! Structural operators on a trace with a missing span: Tempo numbers an orphaned
//! subtree 0 and its negated operators then return false positives (#4804); ours keep
//! the orphans' relations, so negation is exact. Child counts count the children found.
//! Over many blocks, the operators read each partition's blocks in order.

use std::sync::Arc;

use traceql_exec::SearchOptions;
use traceql_format::model::{Resource, Scope, Span};

use crate::common::engine_with;

fn span(id: u8, parent: Option<u8>, name: &str) -> Span {
    Span {
        trace_id: [7; 16],
        span_id: [0, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent.map(|p| [0, 0, 0, 0, 0, 0, 0, p]),
        trace_state: String::new(),
        flags: 0,
        name: name.into(),
        kind: 2,
        start_unix_nano: 1_000 + u64::from(id),
        end_unix_nano: 2_000,
        attributes: vec![],
        dropped_attributes_count: 0,
        events: vec![],
        dropped_events_count: 0,
        links: vec![],
        dropped_links_count: 0,
        status_code: 0,
        status_message: String::new(),
        resource: Arc::new(Resource::default()),
        scope: Arc::new(Scope::default()),
    }
}

/// root(1) ─ api(2); span 9 is missing; its children: worker(3) ─ db(4), and cache(5).
fn trace() -> Vec<Span> {
    vec![
        span(1, None, "root"),
        span(2, Some(1), "api"),
        span(3, Some(9), "worker"),
        span(4, Some(3), "db"),
        span(5, Some(9), "cache"),
    ]
}

async fn names(query: &str) -> Vec<String> {
    let engine = engine_with(trace()).await;
    let options = SearchOptions {
        spans_per_spanset: 100,
        ..SearchOptions::default()
    };
    let response = engine.search(query, &options).await.unwrap();
    let mut names: Vec<String> = response
        .traces
        .iter()
        .flat_map(|t| &t.span_sets)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn relations_inside_an_orphaned_subtree_hold() {
    assert_eq!(
        names(r#"{ name = "worker" } > { name = "db" }"#).await,
        ["db"]
    );
    assert_eq!(names(r#"{ name = "db" } << { }"#).await, ["worker"]);
    // Spans whose parent is the same missing span are siblings.
    assert_eq!(names(r#"{ name = "worker" } ~ { }"#).await, ["cache"]);
}

#[tokio::test]
async fn negated_operators_give_no_false_positives() {
    // Tempo returns `db` here: the orphaned numbers relate to nothing.
    assert!(
        names(r#"{ name = "worker" } !> { name = "db" }"#)
            .await
            .is_empty()
    );
    assert!(
        names(r#"{ name = "worker" } !>> { name = "db" }"#)
            .await
            .is_empty()
    );
    // Leaves: spans that are nobody's parent.
    assert_eq!(names("{ } !< { }").await, ["api", "cache", "db"]);
    // An orphan is not a descendant of the real root.
    assert_eq!(
        names(r#"{ name = "root" } !>> { }"#).await,
        ["cache", "db", "root", "worker"]
    );
}

#[tokio::test]
async fn child_counts_count_the_children_found() {
    assert_eq!(names("{ span:childCount = 1 }").await, ["root", "worker"]);
    assert_eq!(
        names("{ span:childCount = 0 }").await,
        ["api", "cache", "db"]
    );
    assert!(names("{ span:childCount > 1 }").await.is_empty());
}

#[tokio::test]
async fn child_counts_of_blocks_written_before_format_2_are_refused() {
    use traceql_exec::store::Store;
    use traceql_exec::{Engine, EngineError};
    use traceql_format::block::{BlockOptions, encode_block};
    let store = Store::in_memory("format-1");
    let mut block =
        encode_block("format-1", &[trace()], &BlockOptions::default()).expect("encodes");
    block.meta.version = 1;
    store.write_block(&block).await.unwrap();
    let engine = Engine::with_store(store).await.unwrap();
    let error = engine
        .search("{ span:childCount > 1 }", &SearchOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EngineError::Unsupported(m) if m.contains("block format 2")),
        "{error}"
    );
    // Everything else still runs on them.
    let found = engine
        .search(
            r#"{ name = "worker" } > { name = "db" }"#,
            &SearchOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(found.traces.len(), 1);
}

/// Span-set operators over more blocks than partitions, where the blocks follow one
/// another in time: each partition reads a run of them in order, holding whole traces
/// (no sort of all spans, no repartitioning by trace), and the answers are those of
/// the same traces in one block.
#[tokio::test]
async fn span_set_operators_read_runs_of_blocks_without_sorting_or_repartitioning() {
    use traceql_exec::Engine;
    use traceql_format::block::BlockOptions;

    // Trace ids in start order, so blocks of 10 spans follow in time.
    let spans = numbered_traces(0..40);
    let many = crate::common::store_with(
        spans.clone(),
        &BlockOptions {
            spans_per_block: 10,
            ..BlockOptions::default()
        },
    )
    .await;
    let many = Engine::with_store(many).await.unwrap();
    let physical = many.explain(ANCESTOR_COUNT).await.unwrap().physical;
    assert!(!physical.contains("SortExec"), "{physical}");
    assert!(!physical.contains("RepartitionExec"), "{physical}");
    assert!(
        physical.contains("2 groups") && physical.contains("output_partitioning=Hash([trace_id"),
        "{physical}"
    );
    answers_as_one_block(&many, spans).await;
}

/// The query of the tests over many blocks: a span-set operator, then a per-trace
/// aggregate.
const ANCESTOR_COUNT: &str = r#"{ name = "worker" } > { name = "db" } | count() > 0"#;

/// Asserts that `many` answers [`ANCESTOR_COUNT`] with all 40 traces of `spans`, as an
/// engine over the same spans in one block does.
async fn answers_as_one_block(many: &traceql_exec::Engine, spans: Vec<Span>) {
    let one = engine_with(spans).await;
    let options = SearchOptions {
        limit: 1000,
        ..SearchOptions::default()
    };
    let got = many.search(ANCESTOR_COUNT, &options).await.unwrap().traces;
    assert_eq!(got.len(), 40);
    assert_eq!(
        got,
        one.search(ANCESTOR_COUNT, &options).await.unwrap().traces
    );
}

/// Five-span traces numbered `numbers`: trace `t` has id `[t; 16]` and starts `t` ms in.
fn numbered_traces(numbers: impl Iterator<Item = u8>) -> Vec<Span> {
    numbers
        .flat_map(|t| {
            trace().into_iter().map(move |mut s| {
                s.trace_id = [t; 16];
                s.start_unix_nano += 1_000_000 * u64::from(t);
                s.end_unix_nano += 1_000_000 * u64::from(t);
                s
            })
        })
        .collect()
}

/// Blocks whose time ranges overlap (two ingests of interleaved traces) cannot be read
/// in runs of trace order: the span-set operators then repartition by trace, merging in
/// trace order, and answer as over one block.
#[tokio::test]
async fn span_set_operators_over_overlapping_blocks_repartition_by_trace() {
    use traceql_exec::Engine;
    use traceql_exec::store::Store;
    use traceql_format::block::BlockOptions;

    let store = Store::in_memory("test");
    let options = BlockOptions {
        spans_per_block: 10,
        ..BlockOptions::default()
    };
    for (first, name) in [(0, "even"), (1, "odd")] {
        let traces = crate::common::traces(numbered_traces((first..40).step_by(2)));
        crate::common::write_named(&store, traces, &options, |n| format!("{name}-{n}")).await;
    }
    let many = Engine::with_store(store).await.unwrap();
    let physical = many.explain(ANCESTOR_COUNT).await.unwrap().physical;
    assert!(!physical.contains("output_partitioning"), "{physical}");
    assert!(physical.contains("preserve_order=true"), "{physical}");
    assert!(!physical.contains("SortExec"), "{physical}");
    answers_as_one_block(&many, numbered_traces(0..40)).await;
}

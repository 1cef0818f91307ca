//! Blocks end to end: OTLP → spans → block → spans is lossless; bad input is refused
//! with its place named and the store left unchanged; the span table reads every block;
//! exports carry every span out.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::functions_aggregate::count::count;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::{col, lit};
use traceql_exec::compact::{CompactOptions, compact};
use traceql_exec::export::ExportFormat;
use traceql_exec::ingest::{
    IngestError, IngestOptions, ingest_files, write_generated, write_traces,
};
use traceql_exec::otlp::{read_file, request_from_spans, spans_from_request};
use traceql_exec::store::{Store, StoreErrorKind};
use traceql_exec::table::{session_context, span_table};
use traceql_exec::{Engine, TimeRange};
use traceql_format::FormatError;
use traceql_format::block::meta::FORMAT_VERSION;
use traceql_format::block::reader::decode_block;
use traceql_format::block::{BlockOptions, encode_block};
use traceql_format::codes::status;
use traceql_format::ids::hex;
use traceql_format::model::Span;
use traceql_format::model::Trace;
use traceql_format::value::KeyValue;
use traceql_gen::Generator;
use traceql_testkit::require_shared;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sdk(file: &str) -> PathBuf {
    repo().join("testdata/otlp").join(file)
}

fn read(paths: &[PathBuf]) -> Vec<Span> {
    paths
        .iter()
        .flat_map(|p| read_file(p, false).unwrap_or_else(|e| panic!("{e}")).spans)
        .collect()
}

fn sorted(kvs: &[KeyValue]) -> Vec<KeyValue> {
    let mut kvs = kvs.to_vec();
    kvs.sort_by(|a, b| (&a.key, format!("{:?}", a.value)).cmp(&(&b.key, format!("{:?}", b.value))));
    kvs
}

/// Spans in a canonical order with attribute lists sorted (a block keeps every attribute,
/// but typed columns and fallback lists do not keep their order).
fn normalize(spans: &[Span]) -> Vec<Span> {
    let mut out: Vec<Span> = spans
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.attributes = sorted(&s.attributes);
            let mut resource = (*s.resource).clone();
            resource.attributes = sorted(&resource.attributes);
            s.resource = resource.into();
            s
        })
        .collect();
    out.sort_by_key(|s| (s.trace_id, s.span_id, s.start_unix_nano));
    out
}

fn by_trace(spans: Vec<Span>) -> Vec<Trace> {
    let mut traces: BTreeMap<_, Trace> = BTreeMap::new();
    for s in spans {
        traces.entry(s.trace_id).or_default().push(s);
    }
    traces.into_values().collect()
}

fn round_trip(spans: &[Span], options: &BlockOptions) -> Vec<Span> {
    let block = encode_block("test", &by_trace(spans.to_vec()), options).expect("encodes");
    decode_block(Bytes::from(block.data), &block.meta).expect("decodes")
}

fn assert_lossless(spans: &[Span]) {
    assert!(!spans.is_empty());
    let back = round_trip(spans, &BlockOptions::default());
    assert_eq!(normalize(&back), normalize(spans));
    // Also when nothing gets a typed column, and when everything does.
    let none = BlockOptions {
        typed_min_fraction: 2.0,
        always_typed: vec![],
        ..BlockOptions::default()
    };
    assert_eq!(normalize(&round_trip(spans, &none)), normalize(spans));
    let all = BlockOptions {
        typed_min_fraction: 0.0,
        ..BlockOptions::default()
    };
    assert_eq!(normalize(&round_trip(spans, &all)), normalize(spans));
}

#[test]
fn the_tempo_fixture_trace_is_lossless() {
    let spans = read(&[require_shared!(conformance("fixture_trace.otlp.json"))]);
    assert_eq!(spans.len(), 2);
    // Duplicate keys (a string and an int service.name) and opaque values survive.
    let dupes = spans[0]
        .resource
        .attributes
        .iter()
        .filter(|kv| kv.key == "service.name")
        .count();
    assert_eq!(dupes, 2);
    assert_lossless(&spans);
}

#[test]
fn the_engine_fixture_traces_are_lossless() {
    assert_lossless(&read(&[require_shared!(conformance(
        "engine_fixture_traces.otlp.json"
    ))]));
}

#[test]
fn generated_traces_are_lossless() {
    let mut g = Generator::new(3, 1_000_000_000, 10_000_000);
    let spans: Vec<Span> = (0..300).flat_map(|_| g.next_trace()).collect();
    assert_lossless(&spans);
}

/// Spans decoded into arenas, a request at a time with the spans of many traces in
/// each, and grouped by trace by reference, encode as the block the span model gives.
#[test]
fn a_block_encoded_from_arenas_is_the_block_of_the_span_model() {
    use std::sync::Arc;
    use traceql_exec::otlp::decode_request;
    use traceql_format::arena::{ArenaTraces, SpanArena, SpanRef};
    use traceql_format::block::encode_arena_block;
    let mut g = Generator::new(7, 1_000_000_000, 10_000_000);
    let mut traces: Vec<Trace> = (0..200).map(|_| g.next_trace()).collect();
    // Requests of spans from many traces: every seventh span, round after round.
    let spans: Vec<Span> = traces.iter().flatten().cloned().collect();
    let mut arenas = Vec::new();
    let mut by_trace: BTreeMap<_, Vec<SpanRef>> = BTreeMap::new();
    for part in 0..7 {
        let request: Vec<&Span> = spans.iter().skip(part).step_by(7).collect();
        let bytes = prost::Message::encode_to_vec(&request_from_spans(request));
        let mut arena = SpanArena::default();
        decode_request(&bytes, &mut arena, &mut |m| panic!("{m}")).unwrap();
        for (i, span) in arena.spans.iter().enumerate() {
            by_trace.entry(span.trace_id).or_default().push(SpanRef {
                arena: part as u32,
                span: i as u32,
            });
        }
        arenas.push(Arc::new(arena));
    }
    let grouped = ArenaTraces::new(arenas, by_trace.into_values().collect());
    let options = BlockOptions {
        spans_per_row_group: 500,
        ..BlockOptions::default()
    };
    let from_arenas = encode_arena_block("a", &grouped, 0..grouped.traces.len(), &options).unwrap();
    traceql_format::block::order::in_block_order(&mut traces);
    let from_model = encode_block("a", &traces, &options).unwrap();
    assert!(from_model.meta.row_groups > 1);
    assert_eq!(from_arenas.meta, from_model.meta);
    let back = |b: &traceql_format::block::EncodedBlock| {
        decode_block(Bytes::from(b.data.clone()), &b.meta).unwrap()
    };
    assert_eq!(
        normalize(&back(&from_arenas)),
        normalize(&back(&from_model))
    );
    assert_eq!(from_arenas.data, from_model.data, "the same bytes");
}

/// A block written from its rows and a description made beforehand (as a server flushes
/// its head) holds and says what the same traces encoded as a block do.
#[test]
fn a_block_written_from_rows_and_a_description_is_the_block_of_its_traces() {
    use traceql_format::block::schema::block_schema;
    use traceql_format::block::{
        BlockWriter, RowGroupEncoder, choose_typed_columns, describe, span_batch,
    };
    let mut g = Generator::new(5, 1_000_000_000, 10_000_000);
    let mut traces: Vec<Trace> = (0..200).map(|_| g.next_trace()).collect();
    traceql_format::block::order::in_block_order(&mut traces);
    let options = BlockOptions {
        spans_per_row_group: 500,
        ..BlockOptions::default()
    };
    let whole = encode_block("a", &traces, &options).unwrap();
    let typed = choose_typed_columns(&traces, &options);
    let meta = describe("b", &traces, &typed).unwrap();
    let encoder = RowGroupEncoder::new(typed.clone(), 500).unwrap();
    let mut writer = BlockWriter::new("b", &encoder).unwrap();
    for group in traceql_format::block::row_groups(&traces, 500) {
        let rows = span_batch(&block_schema(&typed), &typed, group).unwrap();
        writer.append(encoder.encode_rows(&rows).unwrap()).unwrap();
    }
    let from_rows = writer.finish_described(&meta).unwrap();
    let mut expected = whole.meta.clone();
    expected.id = "b".into();
    expected.bytes = from_rows.meta.bytes;
    assert_eq!(from_rows.meta, expected);
    assert!(from_rows.meta.row_groups > 1);
    let back = |b: &traceql_format::block::EncodedBlock| {
        decode_block(Bytes::from(b.data.clone()), &b.meta).unwrap()
    };
    assert_eq!(normalize(&back(&from_rows)), normalize(&back(&whole)));
    // A description of other typed columns is refused.
    let mut other = meta.clone();
    other.typed_columns.pop();
    let writer = BlockWriter::new("c", &encoder).unwrap();
    assert!(writer.finish_described(&other).is_err());
}

#[test]
fn otlp_round_trips_through_the_model() {
    for file in ["fixture_trace.otlp.json", "engine_fixture_traces.otlp.json"] {
        let spans = read(&[require_shared!(conformance(file))]);
        let again: Vec<Span> = spans_from_request(&request_from_spans(&spans)).unwrap();
        assert_eq!(again, spans, "{file}");
    }
}

#[test]
fn real_sdk_output_reads_the_same_as_json_protobuf_and_compressed() {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sdk("sdk-expected.json")).unwrap()).unwrap();
    let sent = expected["spans"].as_u64().unwrap() as usize;
    let protobuf = read(&[sdk("sdk-1.binpb"), sdk("sdk-2.binpb"), sdk("sdk-3.binpb")]);
    let json = read(&[sdk("sdk-1.json"), sdk("sdk-2.json"), sdk("sdk-3.json")]);
    let lines = read(&[sdk("sdk.jsonl")]);
    let gzip = read(&[sdk("sdk-all.binpb.gz")]);
    let zstd = read(&[sdk("sdk-all.binpb.zst")]);
    assert_eq!(protobuf.len(), sent);
    for (name, other) in [
        ("json", &json),
        ("json lines", &lines),
        ("gzip", &gzip),
        ("zstd", &zstd),
    ] {
        assert_eq!(normalize(other), normalize(&protobuf), "{name}");
    }
    assert_lossless(&protobuf);
    let traces: HashSet<_> = protobuf.iter().map(|s| s.trace_id).collect();
    assert_eq!(traces.len() as u64, expected["traces"].as_u64().unwrap());
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("traceql-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Ingest options with blocks `block`, skipping invalid records if `skip_invalid`.
fn ingest_options(block: &BlockOptions, skip_invalid: bool) -> IngestOptions {
    IngestOptions {
        block: block.clone(),
        skip_invalid,
        ..IngestOptions::default()
    }
}

#[tokio::test]
async fn bad_input_names_the_file_and_leaves_the_store_unchanged() {
    let dir = temp_dir("bad-input");
    let store = Store::local(&dir.join("store"), true).unwrap();
    let options = BlockOptions::default();
    ingest_files(
        &store,
        &[sdk("sdk-1.binpb")],
        &ingest_options(&options, false),
        &|_| {},
    )
    .await
    .unwrap();
    let before = store.list_blocks().await.unwrap();
    assert_eq!(before.len(), 1);

    let whole = std::fs::read(sdk("sdk-3.binpb")).unwrap();
    let truncated = write(&dir, "truncated.binpb", &whole[..whole.len() / 2]);
    let not_otlp = write(&dir, "notes.txt", b"this is not OTLP");
    let bad_json = write(
        &dir,
        "bad.jsonl",
        b"{\"resourceSpans\": []}\n{\"resourceSpans\": 5}\n",
    );
    let bad_id = write(
        &dir,
        "bad-id.json",
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0102030405060708","name":"x"}]}]}]}"#,
    );
    for (file, expect) in [
        (
            &truncated,
            "truncated.binpb: not OTLP/JSON and not valid OTLP/protobuf",
        ),
        (
            &not_otlp,
            "notes.txt: not OTLP/JSON and not valid OTLP/protobuf",
        ),
        (
            &bad_json,
            "bad.jsonl:2: invalid OTLP/JSON: invalid type: integer `5`",
        ),
        (
            &bad_id,
            "bad-id.json:1: resourceSpans[0].scopeSpans[0].spans[0]: trace id must be 16 bytes, got 2",
        ),
    ] {
        let files = [sdk("sdk-2.binpb"), file.clone()];
        let Err(IngestError::Input(err)) =
            ingest_files(&store, &files, &ingest_options(&options, false), &|_| {}).await
        else {
            panic!("{} was accepted", file.display());
        };
        assert!(err.to_string().contains(expect), "{err}");
        assert_eq!(
            store.list_blocks().await.unwrap(),
            before,
            "the store changed"
        );
    }

    // With skip_invalid, the good records go in and the bad ones are counted.
    let files = [sdk("sdk-2.binpb"), truncated, bad_json, bad_id];
    let report = ingest_files(&store, &files, &ingest_options(&options, true), &|_| {})
        .await
        .unwrap();
    assert_eq!(report.skipped.len(), 3, "{:?}", report.skipped);
    assert_eq!(report.spans, read(&[sdk("sdk-2.binpb")]).len() as u64);
    assert_eq!(store.list_blocks().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_block_without_meta_json_is_invisible() {
    let dir = temp_dir("no-meta");
    let store = Store::local(&dir, true).unwrap();
    let spans = read(&[sdk("sdk-1.binpb")]);
    let block = encode_block("half-written", &by_trace(spans), &BlockOptions::default()).unwrap();
    let data = dir.join("single-tenant/half-written");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("data.parquet"), &block.data).unwrap();
    assert!(store.list_blocks().await.unwrap().is_empty());
    store.write_block(&block).await.unwrap();
    let blocks = store.list_blocks().await.unwrap();
    assert_eq!(blocks.len(), 1);
    let back = decode_block(store.read_data("half-written").await.unwrap(), &blocks[0]).unwrap();
    assert_eq!(back.len() as u64, blocks[0].spans);
}

#[tokio::test]
async fn blocks_of_another_kind_or_a_newer_version_are_refused_by_kind() {
    let dir = temp_dir("newer");
    let store = Store::local(&dir, true).unwrap();
    let spans = read(&[sdk("sdk-1.binpb")]);
    assert_eq!(
        encode_block("empty", &[], &BlockOptions::default()).err(),
        Some(FormatError::Empty)
    );
    let mut block = encode_block("newer", &by_trace(spans), &BlockOptions::default()).unwrap();
    block.meta.version = FORMAT_VERSION + 1;
    store.write_block(&block).await.unwrap();
    let error = store.list_blocks().await.unwrap_err();
    assert_eq!(error.kind, StoreErrorKind::Unsupported, "{error}");
    assert!(
        error
            .message
            .contains(&format!("format version {}", FORMAT_VERSION + 1)),
        "{error}"
    );
    block.meta.version = FORMAT_VERSION;
    block.meta.format = "vparquet4".into();
    store.write_block(&block).await.unwrap();
    let error = store.list_blocks().await.unwrap_err();
    assert_eq!(error.kind, StoreErrorKind::Unsupported, "{error}");
    assert!(error.message.contains("`vparquet4`"), "{error}");
    assert!(matches!(
        block.meta.check_readable(),
        Err(FormatError::Unsupported(_))
    ));
}

#[test]
fn row_groups_never_split_a_trace() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let mut g = Generator::new(11, 0, 1_000_000);
    let spans: Vec<Span> = (0..400).flat_map(|_| g.next_trace()).collect();
    let options = BlockOptions {
        spans_per_row_group: 200,
        ..BlockOptions::default()
    };
    let block = encode_block("rg", &by_trace(spans.clone()), &options).unwrap();
    let reader = SerializedFileReader::new(Bytes::from(block.data.clone())).unwrap();
    let groups = reader.metadata().num_row_groups();
    assert!(groups > 5, "{groups} row groups");
    assert_eq!(block.meta.row_groups as usize, groups);
    // Decoding row group by row group: no trace id in two groups, and sorted.
    let back = decode_block(Bytes::from(block.data), &block.meta).unwrap();
    let mut offset = 0;
    let mut seen = HashSet::new();
    let mut last = [0u8; 16];
    for g in 0..groups {
        let rows = reader.metadata().row_group(g).num_rows() as usize;
        let ids: HashSet<_> = back[offset..offset + rows]
            .iter()
            .map(|s| s.trace_id)
            .collect();
        assert!(ids.is_disjoint(&seen), "a trace spans row groups");
        seen.extend(ids);
        offset += rows;
    }
    for s in &back {
        assert!(s.trace_id >= last);
        last = s.trace_id;
    }
    assert_eq!(normalize(&back), normalize(&spans));
}

#[tokio::test]
async fn spans_of_a_trace_in_several_files_land_in_one_block() {
    let dir = temp_dir("split-trace");
    let store = Store::local(&dir, true).unwrap();
    // One trace per block: a trace split over two files still lands whole in one block.
    let options = BlockOptions {
        spans_per_block: 1,
        ..BlockOptions::default()
    };
    let files = [sdk("sdk-1.binpb"), sdk("sdk-2.binpb"), sdk("sdk-3.binpb")];
    let report = ingest_files(&store, &files, &ingest_options(&options, false), &|_| {})
        .await
        .unwrap();
    let blocks = store.list_blocks().await.unwrap();
    assert_eq!(report.blocks as usize, blocks.len());
    assert_eq!(blocks.len(), 4);
    let mut traces = HashSet::new();
    for b in &blocks {
        assert_eq!(b.traces, 1);
        let spans = decode_block(store.read_data(&b.id).await.unwrap(), b).unwrap();
        assert!(traces.insert(spans[0].trace_id), "a trace in two blocks");
    }
}

#[tokio::test]
async fn the_span_table_reads_all_blocks_and_fills_missing_columns_with_null() {
    let store = Store::in_memory("table-test");
    let mut g = Generator::new(5, 0, 1_000_000);
    let generated: Vec<Trace> = by_trace((0..200).flat_map(|_| g.next_trace()).collect());
    let sdk_traces = by_trace(read(&[
        sdk("sdk-1.binpb"),
        sdk("sdk-2.binpb"),
        sdk("sdk-3.binpb"),
    ]));
    let options = BlockOptions::default();
    let mut n = 0;
    write_traces(
        &store,
        generated.clone(),
        &options,
        || {
            n += 1;
            format!("gen-{n}")
        },
        &|_| {},
    )
    .await
    .unwrap();
    write_traces(
        &store,
        sdk_traces.clone(),
        &options,
        || "sdk".to_string(),
        &|_| {},
    )
    .await
    .unwrap();
    let blocks = store.list_blocks().await.unwrap();
    assert_eq!(blocks.len(), 2);
    // `span.cart.items` is typed in the generated block only.
    assert!(blocks.iter().any(|b| {
        b.typed_columns
            .iter()
            .any(|c| c.name == "span.cart.items:int")
    }));
    assert!(blocks.iter().any(|b| {
        !b.typed_columns
            .iter()
            .any(|c| c.name == "span.cart.items:int")
    }));

    let ctx = session_context();
    let sources = store.list().await.unwrap().blocks;
    let table = span_table(&store, &sources).unwrap();
    let df = ctx.read_table(table).unwrap();
    let total: usize = generated.iter().chain(&sdk_traces).map(Vec::len).sum();
    assert_eq!(df.clone().count().await.unwrap(), total);

    let with_items = generated
        .iter()
        .flatten()
        .filter(|s| s.attributes.iter().any(|kv| kv.key == "cart.items"))
        .count();
    let counted = df
        .clone()
        .filter(col("\"span.cart.items:int\"").is_not_null())
        .unwrap()
        .aggregate(vec![], vec![count(lit(1))])
        .unwrap()
        .collect()
        .await
        .unwrap();
    let value = counted[0].column(0).as_primitive::<Int64Type>().value(0);
    assert_eq!(value as usize, with_items);

    let errors = df
        .filter(col("status_code").eq(lit(2i8)))
        .unwrap()
        .select_columns(&["trace_id", "name"])
        .unwrap();
    let batches = errors.collect().await.unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let expected = generated
        .iter()
        .chain(&sdk_traces)
        .flatten()
        .filter(|s| s.status_code == status::ERROR)
        .count();
    assert_eq!(rows, expected);
    assert!(batches.iter().all(|b| b.column(1).null_count() == 0));
}

/// The `total → matched` counts of a pruning metric in a rendered plan.
fn pruning(rendered: &str, metric: &str) -> (usize, usize) {
    let at = rendered
        .find(&format!("{metric}="))
        .unwrap_or_else(|| panic!("no {metric} in\n{rendered}"));
    let text = &rendered[at + metric.len() + 1..];
    let mut numbers = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let total = numbers.next().unwrap().parse().unwrap();
    let matched = numbers.next().unwrap().parse().unwrap();
    (total, matched)
}

#[tokio::test]
async fn lookups_by_id_and_trace_start_prune_row_groups() {
    use datafusion::physical_plan::{collect, display::DisplayableExecutionPlan};
    let store = Store::in_memory("pruning");
    let mut g = Generator::new(9, 0, 1_000_000);
    let traces = by_trace((0..2_000).flat_map(|_| g.next_trace()).collect());
    let options = BlockOptions {
        spans_per_row_group: 2_000,
        ..BlockOptions::default()
    };
    write_traces(
        &store,
        traces.clone(),
        &options,
        || "b".to_string(),
        &|_| {},
    )
    .await
    .unwrap();
    let blocks = store.list_blocks().await.unwrap();
    assert!(
        blocks[0].row_groups >= 10,
        "{} row groups",
        blocks[0].row_groups
    );
    let target = &traces[traces.len() / 2];

    let ctx = session_context();
    let sources = store.list().await.unwrap().blocks;
    let table = span_table(&store, &sources).unwrap();
    use datafusion::scalar::ScalarValue;
    let id = |v: &[u8]| ScalarValue::FixedSizeBinary(v.len() as i32, Some(v.to_vec()));
    let target_start = target.iter().map(|s| s.start_unix_nano).min().unwrap();
    for (column, value, metric) in [
        // Ids are random: bloom filters find the row group.
        (
            "trace_id",
            id(&target[0].trace_id),
            "row_groups_pruned_bloom_filter",
        ),
        (
            "span_id",
            id(&target[target.len() - 1].span_id),
            "row_groups_pruned_bloom_filter",
        ),
        // Blocks are in trace-start order: statistics find the row group.
        (
            "trace_start_unix_nano",
            ScalarValue::UInt64(Some(target_start)),
            "row_groups_pruned_statistics",
        ),
    ] {
        let df = ctx
            .read_table(table.clone())
            .unwrap()
            .filter(col(column).eq(lit(value)))
            .unwrap()
            .select_columns(&["trace_id", "span_id"])
            .unwrap();
        let plan = df.create_physical_plan().await.unwrap();
        let batches = collect(plan.clone(), ctx.task_ctx()).await.unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let expected = if column == "span_id" { 1 } else { target.len() };
        assert_eq!(rows, expected, "{column}");
        let rendered = DisplayableExecutionPlan::with_metrics(plan.as_ref())
            .indent(true)
            .to_string();
        let (total, matched) = pruning(&rendered, metric);
        assert_eq!(total as u64, blocks[0].row_groups, "{rendered}");
        assert_eq!(
            matched, 1,
            "{column}: only the row group holding the id is read\n{rendered}"
        );
    }
}

/// Every span of a store, decoded.
async fn all_spans(store: &Store) -> Vec<Span> {
    let mut spans = Vec::new();
    for b in store.list_blocks().await.unwrap() {
        spans.extend(decode_block(store.read_data(&b.id).await.unwrap(), &b).unwrap());
    }
    spans
}

#[tokio::test]
async fn exports_carry_every_span_out_of_the_store() {
    let dir = temp_dir("export");
    let source = Store::local(&dir.join("source"), true).unwrap();
    let mut g = Generator::new(11, 1_000_000_000, 10_000_000);
    let spans: Vec<Span> = (0..400).flat_map(|_| g.next_trace()).collect();
    // Several blocks, whose typed columns differ.
    let options = BlockOptions {
        spans_per_block: 1_500,
        ..BlockOptions::default()
    };
    let mut n = 0;
    write_traces(
        &source,
        by_trace(spans.clone()),
        &options,
        || {
            n += 1;
            format!("00000000-0000-0000-0000-{n:012}")
        },
        &|_| {},
    )
    .await
    .unwrap();
    let engine = Engine::with_store(source).await.unwrap();
    assert!(engine.blocks().count() > 1);

    // OTLP/JSON lines read back by ingest give the same spans.
    let mut json = Vec::new();
    let summary = engine
        .export(
            &TimeRange::ALL,
            ExportFormat::OtlpJson,
            &mut json,
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(summary.spans as usize, spans.len());
    let file = write(&dir, "export.jsonl", &json);
    let copy = Store::local(&dir.join("copy"), true).unwrap();
    ingest_files(
        &copy,
        &[file],
        &ingest_options(&BlockOptions::default(), false),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(normalize(&all_spans(&copy).await), normalize(&spans));

    // The flat Parquet file has a row per span, ids in hex, kind and status as words.
    let mut flat = Vec::new();
    engine
        .export(
            &TimeRange::ALL,
            ExportFormat::Parquet,
            &mut flat,
            &mut |_| {},
        )
        .await
        .unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(flat))
        .unwrap()
        .build()
        .unwrap();
    let mut rows = HashSet::new();
    for batch in reader {
        let batch = batch.unwrap();
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .clone()
        };
        let (trace, span, st, kind) = (
            text("trace_id"),
            text("span_id"),
            text("status"),
            text("kind"),
        );
        for i in 0..batch.num_rows() {
            rows.insert((
                trace.value(i).to_string(),
                span.value(i).to_string(),
                st.value(i).to_string(),
                kind.value(i).to_string(),
            ));
        }
    }
    let expected: HashSet<_> = spans
        .iter()
        .map(|s| {
            (
                hex(&s.trace_id),
                hex(&s.span_id),
                status::name(s.status_code).to_string(),
                traceql_format::codes::kind::name(s.kind).to_string(),
            )
        })
        .collect();
    assert_eq!(rows, expected);
}

/// Trace ids of `store`'s visible blocks, with how many blocks hold each.
async fn blocks_per_trace(store: &Store) -> BTreeMap<[u8; 16], usize> {
    let mut per_trace = BTreeMap::new();
    for b in store.list_blocks().await.unwrap() {
        let spans = decode_block(store.read_data(&b.id).await.unwrap(), &b).unwrap();
        let ids: HashSet<_> = spans.iter().map(|s| s.trace_id).collect();
        for id in ids {
            *per_trace.entry(id).or_insert(0) += 1;
        }
    }
    per_trace
}

#[tokio::test]
async fn input_larger_than_the_memory_budget_arrives_once_and_compact_makes_traces_whole() {
    let dir = temp_dir("tiny-budget");
    let store = Store::local(&dir.join("store"), true).unwrap();
    // Each trace's first half in one file and second half in another: with a budget
    // far smaller than the input, the first halves are written before the second
    // halves are read.
    let mut g = Generator::new(21, 1_000_000_000, 10_000_000);
    let traces: Vec<Trace> = (0..400).map(|_| g.next_trace()).collect();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for trace in &traces {
        let half = trace.len().div_ceil(2);
        first.extend_from_slice(&trace[..half]);
        second.extend_from_slice(&trace[half..]);
    }
    let file = |name: &str, spans: &[Span]| {
        // Many requests per file, as a Collector writes them.
        let lines: Vec<String> = spans
            .chunks(50)
            .map(|c| serde_json::to_string(&request_from_spans(c)).unwrap())
            .collect();
        write(&dir, name, lines.join("\n").as_bytes())
    };
    let files = [file("first.jsonl", &first), file("second.jsonl", &second)];
    let input: Vec<Span> = first.iter().chain(&second).cloned().collect();
    let options = IngestOptions {
        block: BlockOptions::default(),
        memory_limit: 300 << 10,
        skip_invalid: false,
    };
    let report = ingest_files(&store, &files, &options, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.spans, input.len() as u64);
    assert!(report.partial_traces);
    let blocks = store.list_blocks().await.unwrap();
    assert!(
        blocks.len() > 4,
        "{} blocks: the budget did not bind",
        blocks.len()
    );
    assert!(blocks.iter().all(|b| b.partial_traces));
    assert_eq!(normalize(&all_spans(&store).await), normalize(&input));
    let parts = blocks_per_trace(&store).await;
    assert_eq!(parts.len(), traces.len());
    assert!(
        parts.values().any(|&n| n > 1),
        "no trace was written in parts"
    );

    // Compaction in a budget that needs several passes over the blocks, into blocks
    // larger than the budget allows to hold at once.
    let compact_options = CompactOptions {
        write: IngestOptions {
            memory_limit: 2 << 20,
            block: BlockOptions {
                spans_per_block: input.len() / 3,
                ..BlockOptions::default()
            },
            ..options.clone()
        },
        all: false,
    };
    let report = compact(&store, &compact_options, &|_| {}).await.unwrap();
    assert!(report.groups >= 1);
    assert_eq!(report.spans, input.len() as u64);
    assert!(report.joined_traces > 0);
    assert_eq!(normalize(&all_spans(&store).await), normalize(&input));
    let parts = blocks_per_trace(&store).await;
    assert_eq!(parts.len(), traces.len());
    assert!(parts.values().all(|&n| n == 1), "a trace is still in parts");
    let blocks = store.list_blocks().await.unwrap();
    assert!(blocks.iter().all(|b| !b.partial_traces));
    // The compacted blocks follow one another in time: each is in block order, and
    // its traces start after those of the block before.
    assert_eq!(blocks.len(), 3, "{} blocks", blocks.len());
    assert!(blocks.iter().all(|b| b.row_groups > 1));
    assert_blocks_follow_in_time(&store).await;
    // Whole traces have their structure back: nested sets span the whole trace.
    let spans = all_spans(&store).await;
    let roots = spans.iter().filter(|s| s.parent_span_id.is_none()).count();
    let expected_roots = input.iter().filter(|s| s.parent_span_id.is_none()).count();
    assert_eq!(roots, expected_roots);

    // Nothing is left to do, and what the compaction replaced goes once its grace is
    // over.
    let again = compact(&store, &compact_options, &|_| {}).await.unwrap();
    assert_eq!(again.groups, 0);
    let tidied = store.tidy(std::time::Duration::ZERO).await.unwrap();
    assert!(
        tidied.deleted_blocks > 0 && tidied.folded == 1 + report.groups,
        "{tidied:?}"
    );
    assert_eq!(
        store.list_blocks().await.unwrap(),
        blocks_without_txn(blocks)
    );
    assert_eq!(normalize(&all_spans(&store).await), normalize(&input));
    let metas = walk_meta_files(&dir.join("store"));
    assert_eq!(
        metas,
        store.list_blocks().await.unwrap().len(),
        "replaced blocks remain"
    );
}

#[tokio::test]
async fn input_larger_than_the_budget_whose_traces_arrive_whole_is_written_whole_and_in_order() {
    let dir = temp_dir("whole-in-order");
    let store = Store::local(&dir.join("store"), true).unwrap();
    // Traces in order of start, each trace's spans together, as an export writes
    // them: the budget binds, but no trace has spans after it was written.
    let mut g = Generator::new(22, 1_000_000_000, 10_000_000);
    let traces: Vec<Trace> = (0..400).map(|_| g.next_trace()).collect();
    let input: Vec<Span> = traces.iter().flatten().cloned().collect();
    let lines: Vec<String> = traces
        .iter()
        .map(|t| serde_json::to_string(&request_from_spans(t)).unwrap())
        .collect();
    let file = write(&dir, "traces.jsonl", lines.join("\n").as_bytes());
    let options = IngestOptions {
        block: BlockOptions::default(),
        memory_limit: 300 << 10,
        skip_invalid: false,
    };
    let report = ingest_files(&store, &[file], &options, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.spans, input.len() as u64);
    assert!(!report.partial_traces, "no trace was written in parts");
    let blocks = store.list_blocks().await.unwrap();
    assert!(
        blocks.len() > 4,
        "{} blocks: the budget did not bind",
        blocks.len()
    );
    assert!(blocks.iter().all(|b| !b.partial_traces));
    assert_eq!(normalize(&all_spans(&store).await), normalize(&input));
    let parts = blocks_per_trace(&store).await;
    assert!(parts.values().all(|&n| n == 1), "a trace is in parts");
    // The blocks follow one another in trace order: a query reads them as it reads
    // compacted blocks.
    assert_blocks_follow_in_time(&store).await;
}

/// Checks that every block of `store` holds its traces in block order (by start, then
/// id) and that each block's traces start after those of the block before.
async fn assert_blocks_follow_in_time(store: &Store) {
    let mut starts = Vec::new();
    for b in store.list_blocks().await.unwrap() {
        let spans = decode_block(store.read_data(&b.id).await.unwrap(), &b).unwrap();
        let mut keys: Vec<(u64, [u8; 16])> = Vec::new();
        for span in &spans {
            match keys.last_mut() {
                Some((start, id)) if *id == span.trace_id => {
                    *start = (*start).min(span.start_unix_nano)
                }
                _ => keys.push((span.start_unix_nano, span.trace_id)),
            }
        }
        assert!(keys.is_sorted(), "block {} is out of order", b.id);
        starts.push((keys[0], *keys.last().unwrap()));
    }
    starts.sort();
    assert!(starts.windows(2).all(|w| w[0].1 < w[1].0), "{starts:?}");
}

#[tokio::test]
async fn generated_traces_are_written_in_block_order_in_blocks_larger_than_the_budget() {
    let dir = temp_dir("gen-order");
    let store = Store::local(&dir.join("store"), true).unwrap();
    // Traces a millisecond apart: queue consumers start up to tens of traces late.
    let mut g = Generator::new(5, 1_000_000_000, 1_000_000);
    let expected: Vec<Trace> = {
        let mut copy = Generator::new(5, 1_000_000_000, 1_000_000);
        (0..3_000).map(|_| copy.next_trace()).collect()
    };
    let next = move || {
        let trace = g.next_trace();
        (trace, g.next_start())
    };
    let options = IngestOptions {
        block: BlockOptions {
            spans_per_block: 15_000,
            ..BlockOptions::default()
        },
        memory_limit: 8 << 20,
        skip_invalid: false,
    };
    let mut n = 0;
    let block_id = move || {
        n += 1;
        format!("block-{n}")
    };
    let report = write_generated(&store, 3_000, next, &options, block_id, &|_| {})
        .await
        .unwrap();
    let input: Vec<Span> = expected.into_iter().flatten().collect();
    assert_eq!(report.spans, input.len() as u64);
    assert_eq!(normalize(&all_spans(&store).await), normalize(&input));
    let blocks = store.list_blocks().await.unwrap();
    assert!(blocks.len() > 2, "{} blocks", blocks.len());
    assert!(blocks.iter().all(|b| b.row_groups > 1));
    assert_blocks_follow_in_time(&store).await;
}

/// `blocks` as they read once their transaction is folded away.
fn blocks_without_txn(
    blocks: Vec<traceql_format::block::BlockMeta>,
) -> Vec<traceql_format::block::BlockMeta> {
    blocks
        .into_iter()
        .map(|mut b| {
            b.txn = None;
            b
        })
        .collect()
}

/// How many `meta.json` files lie under `dir`.
fn walk_meta_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            n += walk_meta_files(&path);
        } else if path.file_name().is_some_and(|f| f == "meta.json") {
            n += 1;
        }
    }
    n
}

#[test]
fn framed_messages_as_the_collectors_file_exporter_writes_them_are_read() {
    let dir = temp_dir("framed");
    let frame = |bytes: Vec<u8>| {
        let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
        out.extend(bytes);
        out
    };
    let raw = |name: &str| std::fs::read(sdk(name)).unwrap();
    // Protobuf, zstd-compressed protobuf, and JSON, one message each.
    let mut file = frame(raw("sdk-1.binpb"));
    file.extend(frame(
        zstd::stream::encode_all(raw("sdk-2.binpb").as_slice(), 3).unwrap(),
    ));
    file.extend(frame(raw("sdk-3.json")));
    let path = write(&dir, "traces.pb", &file);
    let expected = read(&[sdk("sdk-1.binpb"), sdk("sdk-2.binpb"), sdk("sdk-3.binpb")]);
    assert_eq!(normalize(&read(&[path])), normalize(&expected));

    let cut = write(&dir, "cut.pb", &file[..file.len() - 10]);
    let err = read_file(&cut, false).unwrap_err().to_string();
    assert!(err.contains("cut.pb: message 3: cut short"), "{err}");
    let mut bad = file.clone();
    let third = file.len() - raw("sdk-3.json").len();
    bad[third] = b'x';
    let bad = write(&dir, "bad.pb", &bad);
    let err = read_file(&bad, false).unwrap_err().to_string();
    assert!(
        err.contains("bad.pb: message 3: invalid OTLP/protobuf"),
        "{err}"
    );
    let skipped = read_file(&bad, true).unwrap();
    assert_eq!(skipped.skipped.len(), 1);
    assert_eq!(
        skipped.spans.len(),
        read(&[sdk("sdk-1.binpb"), sdk("sdk-2.binpb")]).len()
    );
}

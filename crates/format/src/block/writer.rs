//! Encodes traces into one block: a Parquet file sorted by trace start, then trace id
//! (so a trace's spans are together), whose row groups never split a trace, and its
//! [`BlockMeta`].
//!
//! A block is written a row group at a time ([`BlockWriter`]): each row group is
//! encoded on its own ([`RowGroupEncoder`], on any thread, several at once) and its
//! column chunks appended in order, so a block never holds more than its row groups in
//! flight, whatever its size.

use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::Compression;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use traceql_parser::ast::AttributeScope;

use super::meta::{BlockMeta, FORMAT_VERSION, TypedColumn};
use super::rows::{arena_batch, traces_batch};
use super::schema::block_schema;
use super::span_rows::SpanRows;
use super::summary::BlockSummary;
use crate::arena::ArenaTraces;
use crate::error::{FormatError, Result};
use crate::ids::hex;
use crate::model::Trace;
use crate::schema::{TRACE_ORDER, columns, typed_attribute_column};
use crate::value::ValueType;

fn encode(e: impl std::fmt::Display) -> FormatError {
    FormatError::Encode(e.to_string())
}

/// How blocks are cut and which attributes get typed columns.
#[derive(Clone, Debug)]
pub struct BlockOptions {
    /// Spans per block, roughly: a block closes at the first trace boundary past it.
    pub spans_per_block: usize,
    /// Spans per Parquet row group, roughly (row groups end at trace boundaries).
    pub spans_per_row_group: usize,
    /// An attribute (scope, key, type) seen on at least this fraction of a block's spans
    /// gets a typed column.
    pub typed_min_fraction: f64,
    /// Attributes that always get a typed column when present: (scope, key).
    pub always_typed: Vec<(String, String)>,
    /// At most this many typed columns per block (the most frequent win).
    pub max_typed_columns: usize,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            spans_per_block: 1_000_000,
            spans_per_row_group: 100_000,
            typed_min_fraction: 0.01,
            always_typed: vec![("resource".into(), "service.name".into())],
            max_typed_columns: 256,
        }
    }
}

/// An encoded block.
pub struct EncodedBlock {
    /// The Parquet file.
    pub data: Vec<u8>,
    /// Its `meta.json` contents.
    pub meta: BlockMeta,
}

/// Encodes `traces` (in order of trace start, then trace id; each trace's spans by
/// start time) as block `id`, choosing its typed columns from them.
pub fn encode_block(id: &str, traces: &[Trace], options: &BlockOptions) -> Result<EncodedBlock> {
    let spans: usize = traces.iter().map(Vec::len).sum();
    if spans == 0 {
        return Err(FormatError::Empty);
    }
    let typed = choose_typed_columns(traces, options);
    let encoder = RowGroupEncoder::new(typed, spans.min(options.spans_per_row_group))?;
    let mut writer = BlockWriter::new(id, &encoder)?;
    for row_group in row_groups(traces, options.spans_per_row_group) {
        writer.append(encoder.encode(row_group)?)?;
    }
    writer.finish()
}

/// Encodes the traces `which` of `traces` (in block order) as block `id`, choosing its
/// typed columns from them: [`encode_block`] for spans held in an arena.
pub fn encode_arena_block(
    id: &str,
    traces: &ArenaTraces,
    which: Range<usize>,
    options: &BlockOptions,
) -> Result<EncodedBlock> {
    let runs = &traces.traces[which.clone()];
    let spans: usize = runs.iter().map(Vec::len).sum();
    if spans == 0 {
        return Err(FormatError::Empty);
    }
    let typed = choose_arena_typed_columns(traces, which.clone(), options);
    let encoder = RowGroupEncoder::new(typed, spans.min(options.spans_per_row_group))?;
    let mut writer = BlockWriter::new(id, &encoder)?;
    let lengths = runs.iter().map(Vec::len);
    for group in row_group_runs(lengths, options.spans_per_row_group) {
        let group = which.start + group.start..which.start + group.end;
        writer.append(encoder.encode_arena(traces, group)?)?;
    }
    writer.finish()
}

/// `traces` cut into row groups of about `spans` spans, at trace boundaries: a row
/// group ends before the trace that would take it past `spans`.
pub fn row_groups(traces: &[Trace], spans: usize) -> impl Iterator<Item = &[Trace]> {
    row_group_runs(traces.iter().map(Vec::len), spans).map(move |run| &traces[run])
}

/// Traces of `lengths` spans each cut into row groups of about `spans` spans, as
/// [`row_groups`] cuts them: the runs of traces of each row group.
fn row_group_runs(
    lengths: impl Iterator<Item = usize>,
    spans: usize,
) -> impl Iterator<Item = Range<usize>> {
    let mut lengths = lengths.peekable();
    let mut start = 0;
    std::iter::from_fn(move || {
        lengths.peek()?;
        let mut end = start;
        let mut rows = 0;
        while let Some(&n) = lengths.peek() {
            if rows != 0 && rows + n > spans {
                break;
            }
            rows += n;
            end += 1;
            lengths.next();
        }
        let run = start..end;
        start = end;
        Some(run)
    })
}

/// Encodes row groups of blocks with one set of typed columns; cheap to clone, and
/// each clone may encode on a thread of its own.
#[derive(Clone)]
pub struct RowGroupEncoder {
    schema: SchemaRef,
    typed: Arc<[TypedColumn]>,
    props: Arc<WriterProperties>,
    factory: Arc<ArrowRowGroupWriterFactory>,
}

/// A row group encoded by [`RowGroupEncoder::encode`], to [`BlockWriter::append`].
pub struct EncodedRowGroup {
    chunks: Vec<ArrowColumnChunk>,
    summary: BlockSummary,
}

/// The most rows in a data page. Pages of a few thousand spans let the page index
/// skip most of a row group when a search wants a narrow range of trace starts (the
/// newest traces) or of trace durations (the slowest), which spread over every row
/// group.
const PAGE_ROWS: usize = 8192;

impl RowGroupEncoder {
    /// An encoder for blocks with the typed columns `typed`, whose row groups hold
    /// about `row_group_spans` spans (it sizes the bloom filters of the ids).
    pub fn new(typed: Vec<TypedColumn>, row_group_spans: usize) -> Result<RowGroupEncoder> {
        let schema = block_schema(&typed);
        let ndv = row_group_spans.max(1) as u64;
        let props = WriterProperties::builder()
            .set_compression(Compression::LZ4_RAW)
            .set_dictionary_enabled(true)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(PAGE_ROWS)
            .set_column_bloom_filter_enabled(columns::TRACE_ID.into(), true)
            .set_column_bloom_filter_enabled(columns::SPAN_ID.into(), true)
            // Sized for a row group's ids, not Parquet's default of a million: the
            // filter is allocated whole for every row group before it is folded down.
            .set_column_bloom_filter_max_ndv(columns::TRACE_ID.into(), ndv)
            .set_column_bloom_filter_max_ndv(columns::SPAN_ID.into(), ndv)
            .set_max_row_group_row_count(Some(usize::MAX))
            .set_sorting_columns(Some(
                TRACE_ORDER
                    .iter()
                    .map(|name| {
                        Ok(SortingColumn {
                            column_idx: schema.index_of(name).map_err(encode)? as i32,
                            descending: false,
                            nulls_first: false,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            ))
            .build();
        let props = Arc::new(props);
        let (_, factory) = file_writer(&schema, &props)?;
        Ok(RowGroupEncoder {
            schema,
            typed: typed.into(),
            props,
            factory: Arc::new(factory),
        })
    }

    /// Encodes `traces` (whole, in block order) as one row group.
    pub fn encode(&self, traces: &[Trace]) -> Result<EncodedRowGroup> {
        let mut summary = BlockSummary::empty();
        let batch = traces_batch(&self.schema, &self.typed, traces, Some(&mut summary))?;
        self.encoded(batch, summary)
    }

    /// Encodes the traces `which` of `traces` (whole, in block order) as one row group.
    pub fn encode_arena(
        &self,
        traces: &ArenaTraces,
        which: Range<usize>,
    ) -> Result<EncodedRowGroup> {
        let mut summary = BlockSummary::empty();
        let batch = arena_batch(&self.schema, &self.typed, traces, which, Some(&mut summary))?;
        self.encoded(batch, summary)
    }

    /// The row group of the rows `batch`, which `summary` sums up.
    fn encoded(&self, batch: RecordBatch, summary: BlockSummary) -> Result<EncodedRowGroup> {
        let chunks = self.encode_columns(&batch)?;
        drop(batch);
        Ok(EncodedRowGroup { chunks, summary })
    }

    /// Encodes `rows`, the span table's rows of whole traces in block order in this
    /// encoder's schema (as [`span_batch`] makes them), as one row group. What
    /// `meta.json` says of them is not gathered: the block is finished with a
    /// description made beforehand ([`BlockWriter::finish_described`]).
    pub fn encode_rows(&self, rows: &RecordBatch) -> Result<EncodedRowGroup> {
        Ok(EncodedRowGroup {
            chunks: self.encode_columns(rows)?,
            summary: BlockSummary::empty(),
        })
    }

    /// The column chunks of `batch`.
    fn encode_columns(&self, batch: &RecordBatch) -> Result<Vec<ArrowColumnChunk>> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(FormatError::Encode(
                "rows in another schema than the block's".into(),
            ));
        }
        // The row group's index only matters to encryption, which blocks do not use.
        let mut writers = self.factory.create_column_writers(0).map_err(encode)?;
        let mut leaves = writers.iter_mut();
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            for leaf in compute_leaves(field, column).map_err(encode)? {
                let writer = leaves
                    .next()
                    .ok_or_else(|| FormatError::Encode("more leaves than columns".into()))?;
                writer.write(&leaf).map_err(encode)?;
            }
        }
        writers
            .into_iter()
            .map(|w| w.close().map_err(encode))
            .collect()
    }
}

/// The Parquet writer of a block's file, in memory, and its factory of column writers.
fn file_writer(
    schema: &SchemaRef,
    props: &Arc<WriterProperties>,
) -> Result<(SerializedFileWriter<Vec<u8>>, ArrowRowGroupWriterFactory)> {
    ArrowWriter::try_new(Vec::new(), Arc::clone(schema), Some((**props).clone()))
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(encode)
}

/// One block being written, a row group at a time, in order.
pub struct BlockWriter {
    id: String,
    typed: Arc<[TypedColumn]>,
    file: SerializedFileWriter<Vec<u8>>,
    summary: BlockSummary,
    row_groups: u64,
}

impl BlockWriter {
    /// Starts block `id`, whose row groups `encoder` encodes.
    pub fn new(id: &str, encoder: &RowGroupEncoder) -> Result<BlockWriter> {
        let (file, _) = file_writer(&encoder.schema, &encoder.props)?;
        Ok(BlockWriter {
            id: id.into(),
            typed: Arc::clone(&encoder.typed),
            file,
            summary: BlockSummary::empty(),
            row_groups: 0,
        })
    }

    /// Appends the next row group (its traces after all earlier ones in block order).
    pub fn append(&mut self, row_group: EncodedRowGroup) -> Result<()> {
        let mut writer = self.file.next_row_group().map_err(encode)?;
        for chunk in row_group.chunks {
            chunk.append_to_row_group(&mut writer).map_err(encode)?;
        }
        writer.close().map_err(encode)?;
        self.summary.add(row_group.summary);
        self.row_groups += 1;
        Ok(())
    }

    /// Writes the footer; the block, described by `meta` (made of the same traces
    /// beforehand, by [`describe`]) with this block's id, row groups and size.
    pub fn finish_described(self, meta: &BlockMeta) -> Result<EncodedBlock> {
        let BlockWriter {
            id,
            typed,
            file,
            row_groups,
            ..
        } = self;
        if meta.typed_columns.as_slice() != &*typed {
            return Err(FormatError::Encode(
                "the description's typed columns are not the block's".into(),
            ));
        }
        let data = file.into_inner().map_err(encode)?;
        let mut meta = meta.clone();
        meta.format = super::FORMAT_NAME.into();
        meta.version = FORMAT_VERSION;
        meta.id = id;
        meta.row_groups = row_groups;
        meta.bytes = data.len() as u64;
        Ok(EncodedBlock { data, meta })
    }

    /// Writes the footer; the block and its [`BlockMeta`].
    pub fn finish(self) -> Result<EncodedBlock> {
        let BlockWriter {
            id,
            typed,
            file,
            mut summary,
            row_groups,
        } = self;
        let data = file.into_inner().map_err(encode)?;
        let meta = meta_of(id, &typed, &mut summary, row_groups, data.len() as u64)?;
        Ok(EncodedBlock { data, meta })
    }
}

/// The description of a block `id` of the traces `summary` sums up, with typed columns
/// `typed`, `row_groups` row groups and `bytes` bytes of data; an error if it is empty.
fn meta_of(
    id: String,
    typed: &[TypedColumn],
    summary: &mut BlockSummary,
    row_groups: u64,
    bytes: u64,
) -> Result<BlockMeta> {
    let Some((min_trace_id, max_trace_id)) = summary.trace_ids.filter(|_| summary.spans > 0) else {
        return Err(FormatError::Empty);
    };
    Ok(BlockMeta {
        format: super::FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        id,
        start_unix_nano: summary.start_unix_nano,
        end_unix_nano: summary.end_unix_nano,
        traces: summary.traces,
        spans: summary.spans,
        min_trace_id: hex(&min_trace_id),
        max_trace_id: hex(&max_trace_id),
        row_groups,
        bytes,
        typed_columns: typed.to_vec(),
        fallback_keys: summary.fallback_keys.take(),
        dictionaries: summary.recorded_dictionaries(),
        trace_durations: std::mem::take(&mut summary.trace_durations),
        partial_traces: false,
        txn: None,
        source_block: None,
        wal_marks: Default::default(),
    })
}

/// The description of `traces` (in block order, each non-empty) as block `id` with
/// typed columns `typed`, as its `meta.json` would give it, for a block held in memory
/// rather than encoded (one row group, no bytes).
pub fn describe(id: &str, traces: &[Trace], typed: &[TypedColumn]) -> Result<BlockMeta> {
    meta_of(
        id.to_string(),
        typed,
        &mut BlockSummary::of(traces, typed),
        1,
        0,
    )
}

/// The rows of the traces `which` of `traces` in the block schema of the typed columns
/// `typed`, and their description as block `id` (as [`describe`] gives it): what a
/// block held in memory is made of.
pub fn arena_block_rows(
    id: &str,
    traces: &ArenaTraces,
    which: Range<usize>,
    typed: &[TypedColumn],
) -> Result<(RecordBatch, BlockMeta)> {
    let mut summary = BlockSummary::empty();
    let batch = arena_batch(
        &block_schema(typed),
        typed,
        traces,
        which,
        Some(&mut summary),
    )?;
    let meta = meta_of(id.to_string(), typed, &mut summary, 1, 0)?;
    Ok((batch, meta))
}

/// The typed columns of a block that joins blocks with the typed columns `blocks`
/// (each with its spans): every column typed in any of them, those of the most spans
/// first when there are more than `options.max_typed_columns`.
pub fn joined_typed_columns<'a>(
    blocks: impl IntoIterator<Item = (&'a [TypedColumn], u64)>,
    options: &BlockOptions,
) -> Vec<TypedColumn> {
    let mut spans: HashMap<&TypedColumn, u64> = HashMap::default();
    for (typed, n) in blocks {
        for column in typed {
            *spans.entry(column).or_default() += n;
        }
    }
    let mut chosen: Vec<(&TypedColumn, u64)> = spans.into_iter().collect();
    chosen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.name.cmp(&b.0.name)));
    chosen.truncate(options.max_typed_columns);
    let mut out: Vec<TypedColumn> = chosen.into_iter().map(|(c, _)| c.clone()).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Picks the typed attribute columns of a block: frequent (scope, key, type) triples of
/// span and resource attributes, most frequent first. String columns get the plain name
/// (`span.http.route`), other types a type suffix (`span.http.status_code:int`), so a
/// column name means the same type in every block. Keys containing `:` are never typed
/// (their names could collide with a suffixed one); they stay in the fallback lists.
pub fn choose_typed_columns(traces: &[Trace], options: &BlockOptions) -> Vec<TypedColumn> {
    let mut rows = SpanRows::default();
    for trace in traces {
        rows.push_trace(trace);
    }
    choose_typed_columns_in(&rows, options)
}

/// [`choose_typed_columns`] for the traces `which` of `traces`.
pub fn choose_arena_typed_columns(
    traces: &ArenaTraces,
    which: Range<usize>,
    options: &BlockOptions,
) -> Vec<TypedColumn> {
    let spans = traces.traces[which.clone()].iter().map(Vec::len).sum();
    choose_from_counts(traces.attribute_counts(which), spans, options)
}

/// [`choose_typed_columns`] for the traces of `rows`.
fn choose_typed_columns_in(rows: &SpanRows<'_>, options: &BlockOptions) -> Vec<TypedColumn> {
    let mut counts: HashMap<(&str, &str, ValueType), usize> = HashMap::default();
    let mut count = |scope, range: &Range<usize>, n: usize| {
        for (key, value) in rows.attrs(range) {
            if value.value_type() != ValueType::Opaque {
                *counts.entry((scope, key, value.value_type())).or_default() += n;
            }
        }
    };
    // A resource row stands for the run of spans that share it.
    let mut sharing = vec![0usize; rows.resources.len()];
    for span in &rows.spans {
        count("span", &span.attributes, 1);
        sharing[span.resource] += 1;
    }
    for (resource, n) in rows.resources.iter().zip(sharing) {
        count("resource", &resource.attributes, n);
    }
    choose_from_counts(counts, rows.spans.len(), options)
}

/// The typed columns for `spans` spans whose attributes `counts` counts: how many
/// spans have each (scope, key, type).
fn choose_from_counts(
    counts: HashMap<(&str, &str, ValueType), usize>,
    spans: usize,
    options: &BlockOptions,
) -> Vec<TypedColumn> {
    let threshold = ((spans as f64 * options.typed_min_fraction).ceil() as usize).max(1);
    let always = |scope: &str, key: &str| {
        options
            .always_typed
            .iter()
            .any(|(s, k)| s == scope && k == key)
    };
    let mut chosen: Vec<((&str, &str, ValueType), usize)> = counts
        .into_iter()
        .filter(|((scope, key, _), n)| {
            !key.contains(':') && (*n >= threshold || always(scope, key))
        })
        .collect();
    chosen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    chosen.truncate(options.max_typed_columns);
    let mut out: Vec<TypedColumn> = chosen
        .into_iter()
        .map(|((scope, key, value_type), _)| {
            let scope_kind = if scope == "span" {
                AttributeScope::Span
            } else {
                AttributeScope::Resource
            };
            let name = typed_attribute_column(scope_kind, key, value_type)
                .expect("span and resource have columns");
            TypedColumn {
                name,
                scope: scope.into(),
                key: key.into(),
                value_type,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

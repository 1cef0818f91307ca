//! A tenant's head: the spans acknowledged but not yet written to the store, searchable
//! as blocks of a kind of their own ([`HeadKind`]).
//!
//! Spans arrive into a pending buffer, grouped by trace. Every so often (a second, by
//! default) the pending spans are cut into a [`HeadBlock`]: their traces in block order,
//! the rows of the span table built once (the same rows a stored block gives), and the
//! description a stored block's `meta.json` would have. Queries read head blocks through
//! the same block-source seam as stored ones, so search, trace lookups, tags and metrics
//! cover them with no second code path. When a head holds more than
//! [`MAX_HEAD_BLOCKS`] blocks, they are joined into one, so queries meet a few large
//! blocks rather than many small ones.
//!
//! A head block is immutable: a query keeps the blocks it began with, and a flush writes
//! exactly the blocks it was given, then removes them ([`Head::remove`]).

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, FixedSizeBinaryArray, RecordBatch, new_null_array};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::expressions::col as physical_col;
use rustc_hash::FxHashMap;
use traceql_exec::source::{Block, BlockKind, BlockSource, Layout, Opened, ScanRequest};
use traceql_exec::store::Store;
use traceql_format::FormatError;
use traceql_format::arena::{ArenaTraces, SpanArena, SpanRef};
use traceql_format::block::{
    BlockMeta, BlockOptions, arena_block_rows, choose_arena_typed_columns,
};
use traceql_format::facts::Facts;
use traceql_format::ids::TraceId;
use traceql_format::schema::TRACE_ORDER;

/// A head holding more blocks than this joins them into one.
pub const MAX_HEAD_BLOCKS: usize = 16;

/// Rows per batch a head block's scan hands on.
const BATCH_ROWS: usize = 8192;

/// Spans of one tenant acknowledged and not yet in the store.
#[derive(Default)]
pub struct Head {
    /// Spans not yet cut into a block: the arenas of their records…
    arenas: Vec<Arc<SpanArena>>,
    /// …and their spans by trace.
    pending: FxHashMap<TraceId, Vec<SpanRef>>,
    pending_spans: usize,
    pending_bytes: usize,
    /// The first and last log record whose spans are pending.
    pending_records: Option<(u64, u64)>,
    /// When the oldest pending spans arrived.
    pending_since: Option<Instant>,
    blocks: Vec<Arc<HeadBlock>>,
    /// When the spans of the oldest block arrived.
    oldest: Option<Instant>,
    /// Blocks cut so far, for their ids.
    cuts: u64,
    /// A flush holds the head's blocks: they are not joined meanwhile, so that the
    /// flush can take out exactly the blocks it wrote.
    pub(crate) flushing: bool,
}

/// Spans cut from a head: searchable, and what a flush writes.
pub struct HeadBlock {
    meta: BlockMeta,
    facts: Facts,
    /// The span table's rows of the block's traces, in block order, in the schema of
    /// its own typed columns (a block's schema)…
    rows: RecordBatch,
    /// …and the same in batches of at most [`BATCH_ROWS`], as scans hand them on.
    batches: Vec<RecordBatch>,
    /// Its spans as they were decoded, for joining blocks.
    traces: ArenaTraces,
    /// Spans per trace.
    ids: FxHashMap<TraceId, usize>,
    /// The first and last log record whose spans the block holds.
    records: (u64, u64),
    /// Memory it holds: its spans' arenas and its rows.
    accounted: usize,
}

impl Head {
    /// Adds the spans of log record `record`, accounted with `bytes` of memory (see
    /// [`accounted_bytes`]); records come in order.
    pub fn push(&mut self, record: u64, spans: SpanArena, bytes: usize) {
        self.pending_spans += spans.spans.len();
        let arena = self.arenas.len() as u32;
        for (i, span) in spans.spans.iter().enumerate() {
            self.pending
                .entry(span.trace_id)
                .or_default()
                .push(SpanRef {
                    arena,
                    span: i as u32,
                });
        }
        self.arenas.push(Arc::new(spans));
        self.pending_bytes += bytes;
        self.pending_records = Some(match self.pending_records {
            Some((first, _)) => (first, record),
            None => (record, record),
        });
        self.pending_since.get_or_insert_with(Instant::now);
    }

    /// Spans of trace `id` the head holds, pending or cut.
    pub fn trace_spans(&self, id: &TraceId) -> usize {
        self.pending.get(id).map_or(0, Vec::len)
            + self.blocks.iter().map(|b| b.trace_len(id)).sum::<usize>()
    }

    /// Spans pending, not yet in a block.
    pub fn pending_spans(&self) -> usize {
        self.pending_spans
    }

    /// When the oldest pending spans arrived.
    pub fn pending_since(&self) -> Option<Instant> {
        self.pending_since
    }

    /// Spans in the head, pending or cut.
    pub fn spans(&self) -> usize {
        self.pending_spans
            + self
                .blocks
                .iter()
                .map(|b| b.meta.spans as usize)
                .sum::<usize>()
    }

    /// When the oldest spans of the head arrived.
    pub fn oldest(&self) -> Option<Instant> {
        match (self.oldest, self.pending_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The first log record whose spans are in the head, if any.
    pub fn first_record(&self) -> Option<u64> {
        self.blocks
            .iter()
            .map(|b| b.records.0)
            .chain(self.pending_records.map(|(first, _)| first))
            .min()
    }

    /// The blocks cut, oldest first.
    pub fn blocks(&self) -> &[Arc<HeadBlock>] {
        &self.blocks
    }

    /// The blocks cut, as blocks queries read.
    pub fn sources(&self) -> Vec<Block> {
        self.blocks.iter().map(|b| Arc::clone(b) as Block).collect()
    }

    /// Takes the pending spans out, to be cut into a block without holding the head
    /// (see [`Cut`]); `None` if none are pending.
    pub fn take_pending(&mut self, tenant: &str) -> Option<Cut> {
        let records = self.pending_records.take()?;
        let traces = ArenaTraces::new(
            std::mem::take(&mut self.arenas),
            std::mem::take(&mut self.pending).into_values().collect(),
        );
        let accounted = std::mem::take(&mut self.pending_bytes);
        self.pending_spans = 0;
        let since = self.pending_since.take();
        self.oldest = self.oldest.or(since);
        self.cuts += 1;
        Some(Cut {
            id: format!("head-{tenant}-{}", self.cuts),
            traces,
            records,
            accounted,
        })
    }

    /// Adds a block cut from the head's pending spans; returns the blocks to join into
    /// one if the head holds more than [`MAX_HEAD_BLOCKS`] and no flush holds them.
    pub fn add(&mut self, block: HeadBlock, tenant: &str) -> Option<Cut> {
        self.blocks.push(Arc::new(block));
        if self.blocks.len() <= MAX_HEAD_BLOCKS || self.flushing {
            return None;
        }
        let joined = join(&self.blocks);
        self.cuts += 1;
        Some(Cut {
            id: format!("head-{tenant}-{}", self.cuts),
            traces: joined.traces,
            records: joined.records,
            accounted: joined.accounted,
        })
    }

    /// Replaces every block of the head by `joined`, made of them all.
    pub fn replace_all(&mut self, joined: HeadBlock) {
        self.blocks = vec![Arc::new(joined)];
    }

    /// Removes `flushed`, blocks written to the store; returns the memory they were
    /// accounted with.
    pub fn remove(&mut self, flushed: &[Arc<HeadBlock>]) -> usize {
        let before: usize = self.blocks.iter().map(|b| b.accounted).sum();
        self.blocks
            .retain(|b| !flushed.iter().any(|f| Arc::ptr_eq(b, f)));
        if self.blocks.is_empty() {
            self.oldest = None;
        }
        before - self.blocks.iter().map(|b| b.accounted).sum::<usize>()
    }
}

/// The memory spans are accounted with until they are cut into a block: their arena's
/// size, three times (the arena, and the rows built from it once they are cut, which
/// take about twice as much).
pub fn accounted_bytes(spans: &SpanArena) -> usize {
    spans.bytes() * 3
}

/// Spans taken out of a head, to become one of its blocks ([`Cut::build`]).
pub struct Cut {
    id: String,
    traces: ArenaTraces,
    records: (u64, u64),
    accounted: usize,
}

impl Cut {
    /// Memory its spans are accounted with now.
    pub fn accounted(&self) -> usize {
        self.accounted
    }

    /// The block of these spans.
    pub fn build(self, options: &BlockOptions) -> Result<HeadBlock, FormatError> {
        HeadBlock::new(&self.id, self.traces, self.records, options)
    }
}

/// The traces of several head blocks joined: a trace cut into several blocks is one
/// trace again.
struct Joined {
    /// The traces, in block order.
    traces: ArenaTraces,
    /// The first and last log record of their spans.
    records: (u64, u64),
    /// Memory they were accounted with.
    accounted: usize,
}

/// The traces of `blocks`, joined by trace id.
fn join(blocks: &[Arc<HeadBlock>]) -> Joined {
    let mut arenas = Vec::new();
    let mut by_id: FxHashMap<TraceId, Vec<SpanRef>> = FxHashMap::default();
    let mut records = (u64::MAX, 0);
    let mut accounted = 0;
    for block in blocks {
        records = (
            records.0.min(block.records.0),
            records.1.max(block.records.1),
        );
        accounted += block.accounted;
        let first = arenas.len() as u32;
        arenas.extend(block.traces.arenas.iter().cloned());
        for trace in &block.traces.traces {
            let id = block.traces.span(trace[0]).trace_id;
            by_id
                .entry(id)
                .or_default()
                .extend(trace.iter().map(|r| SpanRef {
                    arena: first + r.arena,
                    span: r.span,
                }));
        }
    }
    Joined {
        traces: ArenaTraces::new(arenas, by_id.into_values().collect()),
        records,
        accounted,
    }
}

impl HeadBlock {
    fn new(
        id: &str,
        traces: ArenaTraces,
        records: (u64, u64),
        options: &BlockOptions,
    ) -> Result<HeadBlock, FormatError> {
        let all = 0..traces.traces.len();
        let typed = choose_arena_typed_columns(&traces, all.clone(), options);
        let (batch, mut meta) = arena_block_rows(id, &traces, all, &typed)?;
        meta.format = HeadKind.name().into();
        // Later spans of a trace may arrive after this block was cut.
        meta.partial_traces = true;
        // What it holds, in place of the estimate its spans were accounted with.
        let accounted =
            traces.arenas.iter().map(|a| a.bytes()).sum::<usize>() + batch.get_array_memory_size();
        let batches = (0..batch.num_rows())
            .step_by(BATCH_ROWS)
            .map(|at| batch.slice(at, BATCH_ROWS.min(batch.num_rows() - at)))
            .collect();
        Ok(HeadBlock {
            rows: batch,
            facts: meta.facts(),
            ids: traces
                .traces
                .iter()
                .map(|t| (traces.span(t[0]).trace_id, t.len()))
                .collect(),
            meta,
            batches,
            traces,
            records,
            accounted,
        })
    }

    /// The first and last log record whose spans the block holds.
    pub fn records(&self) -> (u64, u64) {
        self.records
    }

    /// Its rows cut into row groups of about `spans` rows at trace boundaries: what a
    /// stored block of its traces holds.
    pub fn row_groups(&self, spans: usize) -> Vec<RecordBatch> {
        let ids = self
            .rows
            .column_by_name(traceql_format::schema::columns::TRACE_ID)
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeBinaryArray>());
        let Some(ids) = ids else {
            return vec![self.rows.clone()];
        };
        let mut groups = Vec::new();
        let mut start = 0;
        for row in 1..self.rows.num_rows() {
            if row - start >= spans && ids.value(row) != ids.value(row - 1) {
                groups.push(self.rows.slice(start, row - start));
                start = row;
            }
        }
        groups.push(self.rows.slice(start, self.rows.num_rows() - start));
        groups
    }

    /// Memory it holds: its spans' arenas and its rows.
    pub fn accounted(&self) -> usize {
        self.accounted
    }

    /// Spans of trace `id` the block holds.
    pub fn trace_len(&self, id: &TraceId) -> usize {
        self.ids.get(id).copied().unwrap_or(0)
    }
}

impl std::fmt::Debug for HeadBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadBlock")
            .field("id", &self.meta.id)
            .field("spans", &self.meta.spans)
            .finish()
    }
}

#[async_trait]
impl BlockSource for HeadBlock {
    fn kind(&self) -> &'static dyn BlockKind {
        &HeadKind
    }

    fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    fn facts(&self) -> Facts {
        self.facts.clone()
    }

    fn layout(&self) -> Layout {
        Layout {
            whole_traces: false,
            trace_order: true,
            exact_times: true,
            counts_spans: true,
            compactable: false,
        }
    }

    async fn may_hold_trace(&self, _store: &Store, id: &TraceId) -> bool {
        self.ids.contains_key(id)
    }

    fn stored(&self) -> bool {
        false
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The kind of a server's head blocks: spans held in memory, never in a store.
#[derive(Debug)]
pub struct HeadKind;

#[async_trait]
impl BlockKind for HeadKind {
    fn name(&self) -> &'static str {
        "head"
    }

    /// A head block has no `meta.json`.
    fn open(&self, _meta: &serde_json::Value) -> Option<Result<Opened, FormatError>> {
        None
    }

    /// One partition per block, each in trace order, with the table's columns (those a
    /// block lacks are null).
    async fn scan(
        &self,
        _state: &dyn Session,
        request: ScanRequest<'_>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let fields: Vec<usize> = match request.projection {
            Some(projection) => projection.clone(),
            None => (0..request.schema.fields().len()).collect(),
        };
        let schema: SchemaRef = Arc::new(Schema::new(
            fields
                .iter()
                .map(|&i| request.schema.field(i).clone())
                .collect::<Vec<_>>(),
        ));
        let mut partitions = Vec::new();
        for block in request.blocks {
            let block = block.as_any().downcast_ref::<HeadBlock>().ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(format!(
                    "block {} scanned as a head block",
                    block.meta().id
                ))
            })?;
            if request.trace.is_some_and(|id| !block.ids.contains_key(&id)) {
                continue;
            }
            let batches = block
                .batches
                .iter()
                .map(|batch| {
                    let columns = schema
                        .fields()
                        .iter()
                        .map(|field| match batch.column_by_name(field.name()) {
                            Some(column) => Arc::clone(column),
                            None => new_null_array(field.data_type(), batch.num_rows()),
                        })
                        .collect();
                    RecordBatch::try_new(Arc::clone(&schema), columns)
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            partitions.push(batches);
        }
        if partitions.is_empty() {
            partitions.push(Vec::new());
        }
        let order: Vec<PhysicalSortExpr> = TRACE_ORDER
            .iter()
            .map_while(|name| physical_col(name, &schema).ok())
            .map(|c| PhysicalSortExpr::new(c, SortOptions::new(false, false)))
            .collect();
        // The plan applies its limit above the scan.
        let mut source = MemorySourceConfig::try_new(&partitions, schema, None)?;
        if let Some(order) = LexOrdering::new(order) {
            source = source.try_with_sort_information(vec![order])?;
        }
        Ok(DataSourceExec::from_data_source(source))
    }
}

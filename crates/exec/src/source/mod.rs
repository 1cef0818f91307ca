//! Block sources: the seam between the kinds of block a store may hold and everything
//! that reads them.
//!
//! A store holds blocks of several kinds (traceql's own, Grafana Tempo's vParquet4 and
//! vParquet5). Each kind is one module here implementing two traits:
//!
//! - [`BlockKind`]: recognises the kind's `meta.json` and opens the block it describes,
//!   and plans the scan of several blocks of the kind as rows of the logical span table
//!   (given a projection, filters, the order the plan needs and, for a trace lookup, the
//!   trace's id).
//! - [`BlockSource`]: one block — its description ([`BlockMeta`]: id, time range,
//!   counts, typed columns), its [`Facts`], its [`Layout`] (whether its traces are whole
//!   and in trace order, whether its time range is exact) and whether it may hold a
//!   trace (bloom filters, indexes).
//!
//! The engine, its rounds, compaction, conversion, trace lookups, `traceql blocks` and
//! the span table ask these traits, never which kind a block is. Adding a kind is one
//! new module and one line in [`KINDS`]; `docs/format.md` says what a kind provides.

mod read;
mod tempo;
mod traceql;

pub(crate) use traceql::BloomFilters;

pub use self::read::read_traces;
pub use self::tempo::{TempoPart, TempoScan, TempoScanExec, TempoSource};
pub use self::traceql::{TraceqlSource, with_cached_page_indexes};

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use traceql_format::FormatError;
use traceql_format::block::{BlockMeta, TypedColumn};
use traceql_format::facts::Facts;
use traceql_format::ids::TraceId;

use crate::store::Store;

/// The kinds of block a store may hold, each asked in turn whether a `meta.json` is
/// one of its own.
pub static KINDS: &[&dyn BlockKind] = &[&traceql::TraceqlKind, &tempo::TempoKind];

/// One block of a store, of any kind.
pub type Block = Arc<dyn BlockSource>;

/// How a block lays out its spans, which decides how the engine may read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Every trace of the block is whole in it (no trace has spans in other blocks).
    pub whole_traces: bool,
    /// Rows are in trace order (trace start, then trace id), each trace's spans
    /// together, and no trace straddles two row groups: the span-set operators can
    /// stream over a scan of runs of row groups without sorting it.
    pub trace_order: bool,
    /// The description's time range is exact (earliest span start, latest span end),
    /// so a query range that holds it holds every trace of the block.
    pub exact_times: bool,
    /// The description counts the block's spans.
    pub counts_spans: bool,
    /// `traceql compact` may merge the block with others (traceql's own blocks); blocks
    /// it may not are what `traceql convert` rewrites.
    pub compactable: bool,
}

/// One block of a store: what it holds and how it is laid out.
#[async_trait]
pub trait BlockSource: fmt::Debug + Send + Sync + 'static {
    /// The kind of block, which plans its scans.
    fn kind(&self) -> &'static dyn BlockKind;

    /// The block's description: id, time range, counts, typed columns.
    fn meta(&self) -> &BlockMeta;

    /// What a plan may know of the block without reading it.
    fn facts(&self) -> Facts;

    /// How the block lays out its spans.
    fn layout(&self) -> Layout;

    /// The block's facts, with what the kind reads from the store where its
    /// description does not say enough (by default, [`Self::facts`]). The engine asks
    /// once, when it opens the store.
    async fn load_facts(&self, _store: &Store) -> Facts {
        self.facts()
    }

    /// Whether the block may hold trace `id`: false only where the block's own
    /// structures (a bloom filter, an id range) rule it out. A structure that cannot be
    /// read rules out nothing.
    async fn may_hold_trace(&self, store: &Store, id: &TraceId) -> bool;

    /// Whether the block lives in the store (true, the default) rather than in memory
    /// (a server's head): only a stored block's files can be missing or corrupt.
    fn stored(&self) -> bool {
        true
    }

    /// The block as `Any`, for its kind to reach its own fields.
    fn as_any(&self) -> &dyn Any;
}

/// The order a plan needs from a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanOrder {
    /// None: a kind may split blocks over the partitions as it likes.
    Any,
    /// Each partition in trace order, where the kind's layout has it (a kind whose
    /// blocks are in another order declares none, and DataFusion sorts if it must).
    Trace,
    /// Each partition holds whole traces in trace order, declared partitioned by trace
    /// id, where the kind can (only asked for blocks whose traces are all whole);
    /// otherwise as [`ScanOrder::Trace`].
    Clustered,
}

/// What a scan of some blocks of one kind is asked for.
pub struct ScanRequest<'a> {
    /// The store that holds the blocks.
    pub store: &'a Store,
    /// The blocks, all of the kind asked.
    pub blocks: &'a [Block],
    /// The whole span table's schema (the union of every scanned block's columns).
    pub schema: &'a SchemaRef,
    /// The span table's typed attribute columns.
    pub typed: &'a Arc<Vec<TypedColumn>>,
    /// The columns to produce, as indexes into `schema` (all if `None`).
    pub projection: Option<&'a Vec<usize>>,
    /// Filters the scan may use to read less (the plan applies them above it too).
    pub filters: &'a [Expr],
    /// The most rows needed, if known.
    pub limit: Option<usize>,
    /// The order the plan needs.
    pub order: ScanOrder,
    /// For a trace lookup, the trace: a kind may read only what can hold it.
    pub trace: Option<TraceId>,
    /// The trace starts the plan keeps (a window of a search's rounds): a kind may
    /// leave out what lies outside and spread what lies inside over the partitions.
    pub starts: StartRange,
}

/// Trace starts `[from, to)` (unix nanoseconds), unbounded where `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StartRange {
    /// The earliest trace start kept.
    pub from: Option<u64>,
    /// The first trace start past the range.
    pub to: Option<u64>,
}

impl StartRange {
    /// Whether the range leaves anything out.
    pub fn is_bounded(&self) -> bool {
        self.from.is_some() || self.to.is_some()
    }

    /// Whether traces starting from `min` to `max` (inclusive) may lie in the range.
    pub fn overlaps(&self, min: u64, max: u64) -> bool {
        self.from.is_none_or(|from| max >= from) && self.to.is_none_or(|to| min < to)
    }
}

/// A kind of block.
#[async_trait]
pub trait BlockKind: fmt::Debug + Send + Sync {
    /// The kind's name, as `traceql blocks` shows it (`traceql-block`, `tempo`).
    fn name(&self) -> &'static str;

    /// The block that `meta`, a parsed `meta.json`, describes, if it is of this kind:
    /// `None` when it is not. A block of this kind in a version this code does not read
    /// is [`Opened::Skipped`] or [`FormatError::Unsupported`].
    fn open(&self, meta: &serde_json::Value) -> Option<Result<Opened, FormatError>>;

    /// A scan of `request.blocks` producing rows of the span table.
    async fn scan(
        &self,
        state: &dyn Session,
        request: ScanRequest<'_>,
    ) -> Result<Arc<dyn ExecutionPlan>>;
}

/// What a `meta.json` turned out to describe.
#[derive(Debug)]
pub enum Opened {
    /// A block this code reads.
    Block(Block),
    /// A block of a version this code does not read and leaves alone, with a warning.
    Skipped {
        /// Its id.
        id: String,
        /// Its format, as its `meta.json` names it.
        format: String,
    },
}

/// Opens the block that `meta_json` describes, asking each of [`KINDS`] in turn.
pub fn open(meta_json: &[u8]) -> Result<Opened, FormatError> {
    let meta: serde_json::Value = serde_json::from_slice(meta_json)
        .map_err(|e| FormatError::corrupt(format!("invalid meta.json: {e}")))?;
    if let Some(opened) = KINDS.iter().find_map(|kind| kind.open(&meta)) {
        return opened;
    }
    let text = |field: &str| meta.get(field).and_then(|v| v.as_str());
    let id = text("id").or(text("blockID")).unwrap_or("?");
    Err(FormatError::Unsupported(match text("format") {
        Some(format) => {
            format!("block {id} has format `{format}`, which this version does not read")
        }
        None => format!("block {id} names no format; this version cannot read it"),
    }))
}

/// `blocks` as sources of type `T`, the type of the kind scanning them; a block of
/// another kind is an internal error.
pub(crate) fn own<T: BlockSource>(blocks: &[Block]) -> Result<Vec<&T>> {
    blocks
        .iter()
        .map(|b| {
            b.as_any().downcast_ref::<T>().ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(format!(
                    "block {} ({}) scanned as another kind",
                    b.meta().id,
                    b.kind().name()
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_what_it_cannot_read() {
        let error = open(br#"{"format":"vparquet9","id":"x"}"#).unwrap_err();
        assert!(
            matches!(&error, FormatError::Unsupported(m) if m.contains("`vparquet9`")),
            "{error}"
        );
        let error = open(br#"{"id":"x"}"#).unwrap_err();
        assert!(matches!(&error, FormatError::Unsupported(m) if m.contains("no format")));
        assert!(matches!(open(b"{"), Err(FormatError::Corrupt(_))));
    }

    #[test]
    fn kind_names_are_distinct() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
    }
}

//! Grafana Tempo's blocks (vParquet4, vParquet5), read in place: `meta.json` is Tempo's
//! own (`traceql_format::tempo::meta`), rows are whole traces in trace-id order, decoded
//! into rows of the span table by [`scan::TempoScanExec`]. A trace lookup consults the
//! block's bloom filter files first, then its `index` for the one row group to read.
//! The scan's filters, the trace of a lookup and the window of trace starts become a
//! row filter the Parquet reader applies before it decodes a trace ([`filter`]).

mod filter;
mod scan;

pub use scan::{TempoPart, TempoScan, TempoScanExec};

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::physical_plan::ExecutionPlan;
use object_store::ObjectStoreExt;
use parquet::file::metadata::ParquetMetaDataReader;
use traceql_format::FormatError;
use traceql_format::block::BlockMeta;
use traceql_format::facts::Facts;
use traceql_format::ids::TraceId;
use traceql_format::tempo::filter::RowFilter;
use traceql_format::tempo::keys;
use traceql_format::tempo::{TempoBlock, TempoMeta, bloom};

use super::{Block, BlockKind, BlockSource, Layout, Opened, ScanRequest, own};
use crate::store::Store;

/// The kind of Grafana Tempo's blocks.
#[derive(Debug)]
pub(super) struct TempoKind;

/// A block written by Grafana Tempo.
#[derive(Debug)]
pub struct TempoSource {
    meta: BlockMeta,
    tempo: TempoBlock,
}

#[async_trait]
impl BlockSource for TempoSource {
    fn kind(&self) -> &'static dyn BlockKind {
        &TempoKind
    }

    fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Only the typed columns are known (Tempo records no dictionaries and no keys of
    /// its generic attribute lists); child counts are computed when the block is read.
    fn facts(&self) -> Facts {
        Facts {
            missing_child_counts: false,
            ..self.meta.facts()
        }
    }

    /// Tempo's rows are in trace-id order, and its block times are whole seconds; its
    /// blocks may each hold part of a trace (several ingesters flush spans of one
    /// trace, until compaction joins them), and its span count is not recorded.
    fn layout(&self) -> Layout {
        Layout {
            whole_traces: false,
            trace_order: false,
            exact_times: false,
            counts_spans: false,
            compactable: false,
        }
    }

    /// The keys of the generic attribute lists and the service names, from their
    /// columns' dictionaries ([`traceql_format::tempo::keys`]), when reading them takes
    /// at most [`FACTS_BUDGET`] bytes; otherwise, or if a dictionary is incomplete or
    /// cannot be read, what `meta.json` gives (a block that cannot be read is named
    /// when a query scans it).
    async fn load_facts(&self, store: &Store) -> Facts {
        match self.read_facts(store).await {
            Ok(Some(facts)) => facts,
            _ => self.facts(),
        }
    }

    /// The block's bloom filter (`bloom-N`) decides; a filter that cannot be read
    /// rules out nothing.
    async fn may_hold_trace(&self, store: &Store, id: &TraceId) -> bool {
        let name = bloom::file_name(bloom::shard(id, self.tempo.bloom_shards));
        match store.read_block_file(&self.meta.id, &name).await {
            Ok(filter) => bloom::may_contain(&filter, id).unwrap_or(true),
            Err(_) => true,
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The most bytes of a block's key and service-name columns read for its facts: a
/// few percent of a small block; large blocks keep the facts of their `meta.json`.
pub const FACTS_BUDGET: u64 = 8 << 20;

impl TempoSource {
    /// The facts read from the block's dictionaries (see [`BlockSource::load_facts`]);
    /// `None` where they are incomplete or over [`FACTS_BUDGET`].
    async fn read_facts(&self, store: &Store) -> Result<Option<Facts>, Box<dyn std::error::Error>> {
        // Key columns are a few percent of a block: a large one is over budget anyway.
        if self.meta.bytes > 32 * FACTS_BUDGET {
            return Ok(None);
        }
        let objects = store.object_store();
        let path = store.data_path(&self.meta.id);
        let size = match self.meta.bytes {
            0 => objects.head(&path).await?.size,
            size => size,
        };
        // The footer: metadata, its 4-byte length and `PAR1`.
        let tail_len = (self.tempo.footer_size + 8).min(size);
        let tail = objects.get_range(&path, size - tail_len..size).await?;
        let n = tail.len();
        if n < 8 {
            return Ok(None);
        }
        let length = u64::from(u32::from_le_bytes(tail[n - 8..n - 4].try_into()?));
        let metadata = if length + 8 <= n as u64 {
            tail.slice(n - 8 - length as usize..n - 8)
        } else {
            let end = size
                .checked_sub(8)
                .ok_or("a file shorter than its footer")?;
            let start = end
                .checked_sub(length)
                .ok_or("a footer longer than its file")?;
            objects.get_range(&path, start..end).await?
        };
        let metadata = ParquetMetaDataReader::decode_metadata(&metadata)?;
        let Some((chunks, bytes)) = keys::chunks(&metadata) else {
            return Ok(None);
        };
        if bytes > FACTS_BUDGET {
            return Ok(None);
        }
        let column = |c: &keys::Chunk| metadata.row_group(c.row_group).column(c.column);
        let ranges: Vec<_> = chunks
            .iter()
            .map(|c| {
                let (start, len) = column(c).byte_range();
                start..start + len
            })
            .collect();
        let data = objects.get_ranges(&path, &ranges).await?;
        let mut dictionaries = Vec::with_capacity(chunks.len());
        for (c, bytes) in chunks.iter().zip(data) {
            dictionaries.push(keys::dictionary(column(c), bytes)?);
        }
        Ok(keys::facts(
            self.tempo.version,
            &self.tempo.dedicated,
            self.facts(),
            &chunks,
            dictionaries,
        ))
    }
}

#[async_trait]
impl BlockKind for TempoKind {
    fn name(&self) -> &'static str {
        "tempo"
    }

    /// Tempo's `meta.json` names the block `blockID`; a version other than vParquet4 and
    /// vParquet5 is skipped.
    fn open(&self, meta: &serde_json::Value) -> Option<Result<Opened, FormatError>> {
        meta.get("blockID")?;
        let opened = serde_json::from_value::<TempoMeta>(meta.clone())
            .map_err(|e| FormatError::corrupt(format!("invalid Tempo meta.json: {e}")))
            .and_then(|tempo| match tempo.open() {
                Ok((meta, tempo)) => {
                    Ok(Opened::Block(Arc::new(TempoSource { meta, tempo }) as Block))
                }
                Err(FormatError::Unsupported(_)) => Ok(Opened::Skipped {
                    id: tempo.block_id,
                    format: tempo.format,
                }),
                Err(e) => Err(e),
            });
        Some(opened)
    }

    /// Each row group of each block is one partition (a block with fewer row groups
    /// than cores is cut into slices of its rows); a trace lookup reads only the row
    /// group each block's `index` names. The scan declares no order: where a plan needs
    /// trace order, DataFusion sorts, under the memory limit.
    async fn scan(
        &self,
        state: &dyn Session,
        request: ScanRequest<'_>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let store = request.store;
        state
            .runtime_env()
            .register_object_store(store.object_store_url(), store.object_store());
        let test = filter::test_of(request.filters, request.typed);
        let starts = (request.starts.from, request.starts.to);
        let mut parts: Vec<_> = own::<TempoSource>(request.blocks)?
            .into_iter()
            .flat_map(|b| {
                let t = &b.tempo;
                // Every trace of a block inside the window starts in it: nothing to test.
                let (from, to) = starts;
                let inside = from.is_none_or(|f| f <= b.meta.start_unix_nano)
                    && to.is_none_or(|t| b.meta.end_unix_nano < t);
                let starts = if inside { (None, None) } else { starts };
                let filter =
                    RowFilter::new(t.version, &t.dedicated, test.clone(), request.trace, starts);
                scan::parts(store, b, filter.map(Arc::new))
            })
            .collect();
        if let Some(id) = &request.trace {
            parts = scan::parts_for_trace(&store.object_store(), parts, id).await;
        }
        let parts = scan::sliced(parts, state.config().target_partitions());
        Ok(Arc::new(scan::TempoScanExec::try_new(
            store.object_store_url(),
            parts,
            Arc::clone(request.schema),
            Arc::clone(request.typed),
            request.projection.cloned(),
        )?))
    }
}

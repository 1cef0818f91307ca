//! traceql's own blocks: `data.parquet` already holds the span table (plus the columns
//! that make it lossless), so a scan of several blocks is one DataFusion listing table
//! over their files. Projections and filters go into the Parquet reader: row-group
//! statistics, the page index and the bloom filters on `trace_id` and `span_id` prune
//! what is read.

mod clustered;
mod footers;

pub(crate) use footers::BloomFilters;
pub use footers::with_cached_page_indexes;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::col;
use traceql_format::FormatError;
use traceql_format::block::{BlockMeta, FORMAT_NAME};
use traceql_format::facts::Facts;
use traceql_format::ids::{TraceId, hex};
use traceql_format::schema::TRACE_ORDER;

use super::{Block, BlockKind, BlockSource, Layout, Opened, ScanOrder, ScanRequest};
use crate::store::Store;

/// The kind of traceql's own blocks.
#[derive(Debug)]
pub(super) struct TraceqlKind;

/// One of traceql's own blocks.
#[derive(Debug)]
pub struct TraceqlSource {
    meta: BlockMeta,
}

impl TraceqlSource {
    /// The block `meta` describes, if this version reads it.
    pub fn new(meta: BlockMeta) -> Result<TraceqlSource, FormatError> {
        meta.check_readable()?;
        Ok(TraceqlSource { meta })
    }
}

#[async_trait]
impl BlockSource for TraceqlSource {
    fn kind(&self) -> &'static dyn BlockKind {
        &TraceqlKind
    }

    fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    fn facts(&self) -> Facts {
        self.meta.facts()
    }

    fn layout(&self) -> Layout {
        Layout {
            whole_traces: !self.meta.partial_traces,
            trace_order: true,
            exact_times: true,
            counts_spans: true,
            compactable: true,
        }
    }

    /// Outside the block's range of trace ids it cannot be; inside, the bloom filter
    /// in `data.parquet` prunes when the scan runs.
    async fn may_hold_trace(&self, _store: &Store, id: &TraceId) -> bool {
        let id = hex(id);
        let (min, max) = (&self.meta.min_trace_id, &self.meta.max_trace_id);
        // Ids of one length compare as their hex text does; a block that recorded no
        // range rules out nothing.
        min.len() != id.len() || max.len() != id.len() || (*min <= id && id <= *max)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl BlockKind for TraceqlKind {
    fn name(&self) -> &'static str {
        FORMAT_NAME
    }

    fn open(&self, meta: &serde_json::Value) -> Option<Result<Opened, FormatError>> {
        if meta.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return None;
        }
        Some(
            serde_json::from_value::<BlockMeta>(meta.clone())
                .map_err(|e| FormatError::corrupt(format!("invalid meta.json: {e}")))
                .and_then(TraceqlSource::new)
                .map(|source| Opened::Block(Arc::new(source) as Block)),
        )
    }

    /// One listing table over the blocks' files. In trace order each block is read
    /// whole by one partition (blocks are sorted by trace start and trace id); in any
    /// order, files are split into byte ranges of about equal size, so one large block
    /// is read on every core; clustered (and in any order within a window of trace
    /// starts), the files' row groups in the window are cut into runs in trace order
    /// ([`clustered::TraceClustered`]).
    async fn scan(
        &self,
        state: &dyn Session,
        request: ScanRequest<'_>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let store = request.store;
        state
            .runtime_env()
            .register_object_store(store.object_store_url(), store.object_store());
        let urls = request
            .blocks
            .iter()
            .map(|b| ListingTableUrl::parse(store.data_url(&b.meta().id)))
            .collect::<Result<Vec<_>>>()?;
        let format = ParquetFormat::default().with_enable_pruning(true);
        let mut options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
        // A window of trace starts read with no order needed is cut as a clustered scan
        // is, over the row groups in the window only: split by bytes, the window's row
        // groups would mostly fall in one partition.
        let order = match request.order {
            ScanOrder::Any if request.starts.is_bounded() => ScanOrder::Clustered,
            order => order,
        };
        if order != ScanOrder::Any {
            // Blocks are sorted in trace order, so the span-set operators, which need
            // each trace's spans together, can stream over a scan without sorting it.
            let order = TRACE_ORDER
                .iter()
                .map(|c| col(*c).sort(true, false))
                .collect();
            options = options.with_file_sort_order(vec![order]);
        }
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(Arc::clone(request.schema));
        let listing: Arc<dyn TableProvider> = Arc::new(ListingTable::try_new(config)?);
        let (projection, filters, limit) = (request.projection, request.filters, request.limit);
        let plan = match order {
            ScanOrder::Clustered => {
                let clustered = clustered::TraceClustered::new(listing, request.starts);
                clustered.scan(state, projection, filters, limit).await?
            }
            ScanOrder::Any | ScanOrder::Trace => {
                listing.scan(state, projection, filters, limit).await?
            }
        };
        let runtime = state.runtime_env();
        footers::with_cached_page_indexes(
            plan,
            &store.object_store(),
            &runtime.cache_manager.get_file_metadata_cache(),
            state.config().get_extension::<BloomFilters>(),
        )
    }
}

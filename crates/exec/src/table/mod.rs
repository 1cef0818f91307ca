//! The span table of a store as a DataFusion `TableProvider`.
//!
//! traceql's blocks are the files of a listing table whose schema is the union of the
//! blocks' columns: a block without some typed attribute column reads it as null.
//! Scans push projections and filters into Parquet: row-group statistics, the page index
//! and the bloom filters on `trace_id` and `span_id` prune what is read.
//!
//! Grafana Tempo's blocks are read by [`tempo::TempoScanExec`], which decodes their
//! nested rows into the same columns. Their rows are in trace-id order, not trace
//! order: where an operator needs trace order (the span-set operators), DataFusion
//! sorts them, under the memory limit (spilling if it must); beside traceql's blocks,
//! each of their row groups is sorted so that both kinds reach the operators as one
//! stream of whole traces in trace order.

mod clustered;
pub mod tempo;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::expressions::col as physical_col;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::{SessionConfig, SessionContext, col};
use object_store::ObjectStore;
use traceql_format::schema::TRACE_ORDER;

use self::tempo::{TempoPart, TempoScanExec, parts_for_trace, pinned_trace, sliced, tempo_parts};

use crate::store::Store;
use traceql_format::block::schema::block_schema;
use traceql_format::block::{BlockMeta, TypedColumn};

/// The session configuration for span tables: Parquet filter pushdown, page index and
/// bloom filters on. Adjust it (batch size, partitions, …) and pass it to
/// [`crate::Engine::with_config`].
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new();
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pushdown_filters = true;
    parquet.reorder_filters = true;
    parquet.enable_page_index = true;
    parquet.bloom_filter_on_read = true;
    // Repartitioning spans by trace keeps each stream in block order (a merge, not a
    // sort), which the span-set operators need.
    config.options_mut().optimizer.prefer_existing_sort = true;
    // File statistics would be read from every block's footer each time a plan is
    // made (milliseconds per round of a newest-first search); nothing here needs them:
    // Parquet pruning reads row-group statistics when the scan runs.
    config.options_mut().execution.collect_statistics = false;
    config
}

/// A session configured for span tables (see [`session_config`]).
pub fn session_context() -> SessionContext {
    SessionContext::new_with_config(session_config())
}

/// The union of the typed columns of `blocks`. A name used with two different types
/// (which the writer never produces) is an error.
pub fn union_typed_columns(blocks: &[BlockMeta]) -> Result<Vec<TypedColumn>> {
    let mut by_name: BTreeMap<&str, &TypedColumn> = BTreeMap::new();
    for block in blocks {
        for column in &block.typed_columns {
            if let Some(seen) = by_name.insert(&column.name, column)
                && seen.value_type != column.value_type
            {
                return Err(DataFusionError::Plan(format!(
                    "typed column `{}` has type {} in one block and {} in block {}",
                    column.name,
                    seen.value_type.name(),
                    column.value_type.name(),
                    block.id
                )));
            }
        }
    }
    Ok(by_name.into_values().cloned().collect())
}

/// The span table of `store`, with the object store registered in `ctx`.
pub async fn span_table(
    ctx: &SessionContext,
    store: &Store,
    blocks: &[BlockMeta],
) -> Result<Arc<dyn TableProvider>> {
    let typed = union_typed_columns(blocks)?;
    let schema: Arc<Schema> = block_schema(&typed);
    if blocks.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let (tempo, own): (Vec<&BlockMeta>, Vec<&BlockMeta>) =
        blocks.iter().partition(|b| b.tempo.is_some());
    let listing = if own.is_empty() {
        None
    } else {
        Some(listing_table(ctx, store, &own, &schema).await?)
    };
    if tempo.is_empty()
        && let Some(listing) = listing
    {
        return Ok(listing);
    }
    let parts = tempo.iter().flat_map(|b| tempo_parts(store, b)).collect();
    Ok(Arc::new(SpanTable {
        schema,
        typed: Arc::new(typed),
        listing,
        store: store.object_store(),
        tempo: parts,
    }))
}

/// A span table over traceql's blocks (a listing table) and Tempo's.
#[derive(Debug)]
struct SpanTable {
    schema: SchemaRef,
    typed: Arc<Vec<TypedColumn>>,
    listing: Option<Arc<dyn TableProvider>>,
    store: Arc<dyn ObjectStore>,
    tempo: Vec<TempoPart>,
}

#[async_trait]
impl TableProvider for SpanTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The listing table prunes with them; the Tempo scan leaves them to the filter
        // above it.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut inputs = Vec::new();
        if let Some(listing) = &self.listing {
            inputs.push(listing.scan(state, projection, filters, limit).await?);
        }
        let mut parts = self.tempo.clone();
        if let Some(id) = pinned_trace(filters) {
            parts = parts_for_trace(&self.store, parts, &id).await;
        }
        let parts = sliced(parts, state.config().target_partitions());
        let scan: Arc<dyn ExecutionPlan> = Arc::new(TempoScanExec::try_new(
            Arc::clone(&self.store),
            parts,
            Arc::clone(&self.schema),
            Arc::clone(&self.typed),
            projection.cloned(),
        )?);
        if self.listing.is_none() {
            // Alone, the scan declares no order: DataFusion sorts (per partition, after
            // repartitioning by trace) only for the operators that need trace order.
            return Ok(scan);
        }
        // Beside traceql's blocks, which are in trace order, each row group is sorted
        // so that the union keeps that order.
        let order: Option<Vec<PhysicalSortExpr>> = TRACE_ORDER
            .iter()
            .map(|name| {
                physical_col(name, &scan.schema())
                    .ok()
                    .map(|c| PhysicalSortExpr::new(c, SortOptions::new(false, false)))
            })
            .collect();
        inputs.push(match order.and_then(LexOrdering::new) {
            Some(order) => Arc::new(SortExec::new(order, scan).with_preserve_partitioning(true)),
            None => scan,
        });
        UnionExec::try_new(inputs)
    }
}

/// `provider` without the declared trace order, if it is the listing table of traceql's
/// blocks: a plan that needs no trace order scans it split into byte ranges of about
/// equal size, one per partition, so a store of one large block is read on every core;
/// in trace order each block is read whole by one partition.
pub(crate) fn without_trace_order(
    provider: &Arc<dyn TableProvider>,
) -> Result<Option<Arc<dyn TableProvider>>> {
    let Some(listing) = provider.downcast_ref::<ListingTable>() else {
        return Ok(None);
    };
    let options = listing.options().clone().with_file_sort_order(Vec::new());
    let config = ListingTableConfig::new_with_multi_paths(listing.table_paths().clone())
        .with_listing_options(options)
        .with_schema(listing.schema());
    Ok(Some(Arc::new(ListingTable::try_new(config)?)))
}

/// `provider` scanned in runs of whole row groups in trace order, one per partition
/// (see [`clustered::TraceClustered`]), if it is the listing table of traceql's blocks.
/// Only for blocks in which every trace is whole.
pub(crate) fn clustered_by_trace(
    provider: &Arc<dyn TableProvider>,
) -> Result<Option<Arc<dyn TableProvider>>> {
    if provider.downcast_ref::<ListingTable>().is_none() {
        return Ok(None);
    }
    let clustered = clustered::TraceClustered::new(Arc::clone(provider));
    Ok(Some(Arc::new(clustered)))
}

/// A rewrite of a table for one plan ([`without_trace_order`], [`clustered_by_trace`]):
/// `None` where it does not apply.
pub(crate) type Rewrite = fn(&Arc<dyn TableProvider>) -> Result<Option<Arc<dyn TableProvider>>>;

/// The listing table of traceql's blocks `blocks`, with the table schema `schema`.
async fn listing_table(
    ctx: &SessionContext,
    store: &Store,
    blocks: &[&BlockMeta],
    schema: &SchemaRef,
) -> Result<Arc<dyn TableProvider>> {
    ctx.runtime_env()
        .register_object_store(store.object_store_url(), store.object_store());
    let urls = blocks
        .iter()
        .map(|b| ListingTableUrl::parse(store.data_url(&b.id)))
        .collect::<Result<Vec<_>>>()?;
    let format = ParquetFormat::default().with_enable_pruning(true);
    // Blocks are sorted in trace order, so the span-set operators, which need each
    // trace's spans together, can stream over a scan without sorting it.
    let order = TRACE_ORDER
        .iter()
        .map(|c| col(*c).sort(true, false))
        .collect();
    let options = ListingOptions::new(Arc::new(format))
        .with_file_extension(".parquet")
        .with_file_sort_order(vec![order]);
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(Arc::clone(schema));
    Ok(Arc::new(ListingTable::try_new(config)?))
}

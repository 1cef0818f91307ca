//! The span table of a store as a DataFusion `TableProvider`.
//!
//! Every block's `data.parquet` is one file of a listing table whose schema is the union
//! of the blocks' columns: a block without some typed attribute column reads it as null.
//! Scans push projections and filters into Parquet: row-group statistics, the page index
//! and the bloom filters on `trace_id` and `span_id` prune what is read.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::TableProvider;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{SessionConfig, SessionContext, col};
use traceql_format::schema::TRACE_ORDER;

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
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

//! The span table of a store as a DataFusion `TableProvider`.
//!
//! [`SpanTable`] is the table over blocks of any kinds (see [`crate::source`]): its
//! schema is the union of the blocks' columns (a block without some typed attribute
//! column reads it as null), and a scan asks each kind present for the scan of its
//! blocks, in the order the plan needs. Kinds whose rows are not in trace order (Grafana
//! Tempo's) have each partition sorted where the plan needs trace order beside blocks
//! that are, so that all kinds reach the span-set operators as one stream of whole
//! traces in trace order.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::empty::EmptyTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::expressions::col as physical_col;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use traceql_format::block::TypedColumn;
use traceql_format::block::schema::block_schema;
use traceql_format::ids::TraceId;
use traceql_format::schema::TRACE_ORDER;

use crate::source::{Block, BlockKind, ScanOrder, ScanRequest, StartRange};
use crate::store::Store;

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
pub fn union_typed_columns(blocks: &[Block]) -> Result<Vec<TypedColumn>> {
    let mut by_name: BTreeMap<&str, &TypedColumn> = BTreeMap::new();
    for block in blocks {
        for column in &block.meta().typed_columns {
            if let Some(seen) = by_name.insert(&column.name, column)
                && seen.value_type != column.value_type
            {
                return Err(DataFusionError::Plan(format!(
                    "typed column `{}` has type {} in one block and {} in block {}",
                    column.name,
                    seen.value_type.name(),
                    column.value_type.name(),
                    block.meta().id
                )));
            }
        }
    }
    Ok(by_name.into_values().cloned().collect())
}

/// The span table of `blocks` of `store` (an empty table without blocks).
pub fn span_table(store: &Store, blocks: &[Block]) -> Result<Arc<dyn TableProvider>> {
    if blocks.is_empty() {
        let schema: Arc<Schema> = block_schema(&[]);
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    Ok(Arc::new(SpanTable::try_new(store, blocks)?))
}

/// The span table over some blocks of a store, of any kinds.
#[derive(Clone, Debug)]
pub struct SpanTable {
    schema: SchemaRef,
    typed: Arc<Vec<TypedColumn>>,
    store: Store,
    /// The blocks, by kind, in the order kinds first appear.
    kinds: Vec<(&'static dyn BlockKind, Vec<Block>)>,
    order: ScanOrder,
    trace: Option<TraceId>,
    starts: StartRange,
}

impl SpanTable {
    /// The table of `blocks` of `store`, scanned in trace order.
    pub fn try_new(store: &Store, blocks: &[Block]) -> Result<SpanTable> {
        let typed = union_typed_columns(blocks)?;
        let mut kinds: Vec<(&'static dyn BlockKind, Vec<Block>)> = Vec::new();
        for block in blocks {
            let kind = block.kind();
            match kinds.iter_mut().find(|(k, _)| k.name() == kind.name()) {
                Some((_, of_kind)) => of_kind.push(Arc::clone(block)),
                None => kinds.push((kind, vec![Arc::clone(block)])),
            }
        }
        Ok(SpanTable {
            schema: block_schema(&typed),
            typed: Arc::new(typed),
            store: store.clone(),
            kinds,
            order: ScanOrder::Trace,
            trace: None,
            starts: StartRange::default(),
        })
    }

    /// The table scanned in `order`.
    pub fn with_order(mut self, order: ScanOrder) -> SpanTable {
        self.order = order;
        self
    }

    /// The table for a lookup of trace `id`: each kind may read only what can hold it
    /// (the plan still filters on the id).
    pub fn for_trace(mut self, id: TraceId) -> SpanTable {
        self.trace = Some(id);
        self
    }

    /// The table for a plan that keeps only traces starting in `starts` (it filters on
    /// them too): kinds may leave the rest out of their partitions.
    pub fn with_starts(mut self, starts: StartRange) -> SpanTable {
        self.starts = starts;
        self
    }

    /// The table's typed attribute columns.
    pub fn typed(&self) -> Arc<Vec<TypedColumn>> {
        Arc::clone(&self.typed)
    }
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
        // Kinds may prune with them; the filters stay above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let alone = self.kinds.len() == 1;
        // Runs of row groups cannot be cut across kinds: beside another kind, each
        // keeps to trace order.
        let order = match self.order {
            ScanOrder::Clustered if !alone => ScanOrder::Trace,
            order => order,
        };
        let mut inputs = Vec::new();
        for (kind, blocks) in &self.kinds {
            let request = ScanRequest {
                store: &self.store,
                blocks,
                schema: &self.schema,
                typed: &self.typed,
                projection,
                filters,
                limit,
                order,
                trace: self.trace,
                starts: self.starts,
            };
            let scan = kind.scan(state, request).await?;
            let in_order = blocks.iter().all(|b| b.layout().trace_order);
            if alone || order == ScanOrder::Any || in_order {
                // Alone, a scan out of trace order is sorted by DataFusion (per partition,
                // after repartitioning by trace) only for the operators that need it.
                inputs.push(scan);
                continue;
            }
            // Beside blocks in trace order, each partition is sorted so that the union
            // keeps that order.
            let sort: Option<Vec<PhysicalSortExpr>> = TRACE_ORDER
                .iter()
                .map(|name| {
                    physical_col(name, &scan.schema())
                        .ok()
                        .map(|c| PhysicalSortExpr::new(c, SortOptions::new(false, false)))
                })
                .collect();
            inputs.push(match sort.and_then(LexOrdering::new) {
                Some(sort) => Arc::new(SortExec::new(sort, scan).with_preserve_partitioning(true)),
                None => scan,
            });
        }
        if inputs.len() == 1 {
            return Ok(inputs.remove(0));
        }
        UnionExec::try_new(inputs)
    }
}

//! Looking up one whole trace by id. traceql's blocks are pruned by the bloom filter
//! on `trace_id` inside their Parquet files; Grafana Tempo's blocks by their own bloom
//! filter files, read before the block.

use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::{col, lit};
use traceql_format::block::BlockMeta;
use traceql_format::block::reader::decode_batch;
use traceql_format::ids::{TraceId, parse_trace_id};
use traceql_format::model::Span;
use traceql_format::schema::columns as c;
use traceql_format::tempo::bloom;

use crate::engine::{Engine, EngineError, QueryStats, TimeRange, Window};
use crate::table::union_typed_columns;

impl Engine {
    /// Every span of the trace with id `trace_id` (hex, leading zeros optional), in
    /// stored order; empty if no block holds it.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<Span>, EngineError> {
        let id = parse_trace_id(trace_id).map_err(EngineError::InvalidInput)?;
        let mut selected = Vec::new();
        for block in self.select(&TimeRange::ALL, None) {
            if !self.may_hold_trace(&block.0, &id).await {
                continue;
            }
            selected.push(block);
        }
        let blocks: Vec<BlockMeta> = selected.iter().map(|(b, _)| b.clone()).collect();
        let (scan, _) = self.scan(&TimeRange::ALL, &selected, Window::ALL).await?;
        let plan = LogicalPlanBuilder::from(scan)
            .filter(col(c::TRACE_ID).eq(lit(ScalarValue::FixedSizeBinary(16, Some(id.to_vec())))))?
            .build()?;
        let batches = self
            .execute(&plan, &selected, &mut QueryStats::default())
            .await?;
        let typed = union_typed_columns(&blocks)?;
        let mut spans = Vec::new();
        for batch in &batches {
            decode_batch(batch, &typed, &mut spans)
                .map_err(|e| EngineError::Execution(DataFusionError::Execution(e.to_string())))?;
        }
        Ok(spans)
    }

    /// Whether block `b` may hold trace `id`: false only for a Tempo block whose bloom
    /// filter rules it out. A filter that cannot be read rules out nothing.
    async fn may_hold_trace(&self, b: &BlockMeta, id: &TraceId) -> bool {
        let Some(tempo) = &b.tempo else {
            return true;
        };
        let name = bloom::file_name(bloom::shard(id, tempo.bloom_shards));
        match self.store.read_block_file(&b.id, &name).await {
            Ok(filter) => bloom::may_contain(&filter, id).unwrap_or(true),
            Err(_) => true,
        }
    }
}

//! Looking up one whole trace by id. Each block source says whether it may hold the
//! trace (traceql's blocks by their range of trace ids, then the bloom filter on
//! `trace_id` inside their Parquet files; Grafana Tempo's by their own bloom filter
//! files, read before the block), and the scan is given the id, so a kind can read only
//! what may hold it.

use datafusion::error::DataFusionError;
use traceql_format::block::reader::decode_batch;
use traceql_format::ids::parse_trace_id;
use traceql_format::model::Span;

use crate::engine::{Engine, EngineError, QueryStats, TimeRange, Window};
use crate::source::Block;
use crate::table::union_typed_columns;

impl Engine {
    /// Every span of the trace with id `trace_id` (hex, leading zeros optional), in
    /// stored order; empty if no block holds it.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<Span>, EngineError> {
        let id = parse_trace_id(trace_id).map_err(EngineError::InvalidInput)?;
        let mut selected = Vec::new();
        for block in self.select(&TimeRange::ALL, None) {
            if block.0.may_hold_trace(&self.store, &id).await {
                selected.push(block);
            }
        }
        let window = Window {
            trace: Some(id),
            ..Window::ALL
        };
        let (plan, _) = self.scan(&TimeRange::ALL, &selected, window).await?;
        let sources: Vec<Block> = selected.iter().map(|(b, _)| b.clone()).collect();
        let typed = union_typed_columns(&sources)?;
        let mut spans = Vec::new();
        // Each batch becomes spans as it comes: only the trace itself is held.
        self.execute_each(
            &plan,
            &selected,
            true,
            &mut QueryStats::default(),
            |batch| {
                decode_batch(&batch, &typed, &mut spans)
                    .map_err(|e| EngineError::Execution(DataFusionError::Execution(e.to_string())))
            },
        )
        .await?;
        Ok(spans)
    }
}

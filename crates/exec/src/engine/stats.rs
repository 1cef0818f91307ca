//! What a query read and where its time went, from the physical plan's metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;

use crate::store::Io;

/// Statistics of one query: a search, a metrics query or a trace lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Spans the scan produced after Parquet-level pruning.
    pub spans_scanned: u64,
    /// Bytes read from block files.
    pub bytes_scanned: u64,
    /// Row groups skipped by statistics or bloom filters.
    pub row_groups_pruned: u64,
    /// Row groups considered.
    pub row_groups_total: u64,
    /// Rows removed by filters pushed into the Parquet reader.
    pub rows_pruned_by_pushdown: u64,
    /// Time to parse, validate and plan.
    pub planning: Duration,
    /// Time to run the plan and assemble results.
    pub execution: Duration,
    /// Blocks in the searched range.
    pub blocks: u64,
    /// Rounds of the newest-first search (each a wider window of trace starts).
    pub rounds: u64,
    /// Requests to the store and bytes fetched from it (metadata included). Searches
    /// running at the same time on one engine count each other's requests.
    pub io: Io,
    /// What each task of a scan shared out over a cluster's workers read, by task
    /// number (empty on one machine).
    pub shares: BTreeMap<u64, Share>,
}

/// What one task of a scan shared out over a cluster read (see [`QueryStats::shares`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Share {
    /// Spans its scan produced.
    pub spans: u64,
    /// Bytes it read from block files.
    pub bytes: u64,
    /// Row groups it was given.
    pub row_groups: u64,
    /// Time its scan took, opening files and decoding included.
    pub time: Duration,
}

/// The label datafusion-distributed gives the metrics each task sends back: the task's
/// number.
const TASK_LABEL: &str = "task_id";

impl QueryStats {
    /// Adds the scan metrics of `plan` (after it ran): those of its scans (of traceql's
    /// blocks and of Grafana Tempo's), run here or, shared out over a cluster's workers, by them (`DistributedLeafExec`
    /// holds the metrics its workers sent, see [`super::RemoteMetrics`]).
    pub fn collect(&mut self, plan: &Arc<dyn ExecutionPlan>) {
        if matches!(
            plan.name(),
            "DataSourceExec" | "TempoScanExec" | "DistributedLeafExec"
        ) && let Some(metrics) = plan.metrics()
        {
            for metric in metrics.iter() {
                let task = metric
                    .labels()
                    .iter()
                    .find(|l| l.name() == TASK_LABEL)
                    .and_then(|l| l.value().parse::<u64>().ok());
                if let Some(task) = task {
                    let share = self.shares.entry(task).or_default();
                    match (metric.value().name(), metric.value()) {
                        ("output_rows", v) => share.spans += v.as_usize() as u64,
                        ("bytes_scanned", v) => share.bytes += v.as_usize() as u64,
                        ("time_elapsed_processing", v) => {
                            share.time += Duration::from_nanos(v.as_usize() as u64)
                        }
                        (
                            "row_groups_pruned_statistics",
                            MetricValue::PruningMetrics {
                                pruning_metrics, ..
                            },
                        ) => {
                            share.row_groups +=
                                (pruning_metrics.pruned() + pruning_metrics.matched()) as u64;
                        }
                        _ => {}
                    }
                }
                match (metric.value().name(), metric.value()) {
                    ("output_rows", v) => self.spans_scanned += v.as_usize() as u64,
                    ("bytes_scanned", v) => self.bytes_scanned += v.as_usize() as u64,
                    ("pushdown_rows_pruned", v) => {
                        self.rows_pruned_by_pushdown += v.as_usize() as u64
                    }
                    (
                        "row_groups_pruned_statistics",
                        MetricValue::PruningMetrics {
                            pruning_metrics, ..
                        },
                    ) => {
                        self.row_groups_pruned += pruning_metrics.pruned() as u64;
                        self.row_groups_total +=
                            (pruning_metrics.pruned() + pruning_metrics.matched()) as u64;
                    }
                    (
                        "row_groups_pruned_bloom_filter",
                        MetricValue::PruningMetrics {
                            pruning_metrics, ..
                        },
                    ) => {
                        self.row_groups_pruned += pruning_metrics.pruned() as u64;
                    }
                    _ => {}
                }
            }
        }
        for child in plan.children() {
            self.collect(child);
        }
    }
}

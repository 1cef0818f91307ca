//! The coordinator: an engine's session made to plan its queries over workers.
//!
//! datafusion-distributed cuts each physical plan into stages at its exchanges. A
//! search over traceql's blocks has none below its span-set operators: the clustered
//! scan already hands each partition whole traces in trace order. So the scan, the
//! filters and the span-set operators run on the workers, each over its own row
//! groups, and only their results cross the network to the coordinator, which merges
//! them and assembles the answer. Metrics queries aggregate partially on the workers
//! and shuffle only those partial aggregates.
//!
//! Handlers of ours shape the stages:
//! - [`share_scan`] gives each worker a contiguous, byte-balanced share of the clustered
//!   scan's row groups (datafusion-distributed's own handler deals whole ranges round
//!   robin: the clustered scan has one a partition, so most workers sat idle);
//! - [`share_files`] shares out other scans as datafusion-distributed's own handler
//!   does, but gives every task the same number of partitions (its own fails small
//!   scans);
//! - [`share_tempo`] deals the row groups of Grafana Tempo's blocks to the tasks,
//!   balanced by bytes. Tempo's blocks may each hold part of a trace, so a search over
//!   them shuffles spans by trace id, as it repartitions them in one process;
//! - [`keep_order`] keeps an order-preserving repartition (blocks that overlap in time)
//!   in one task: datafusion-distributed 4.0 merges the streams of several producer
//!   tasks in arrival order while declaring them sorted, which would interleave traces.

use std::sync::Arc;

use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileGroupPartitioner, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedConfig, DistributedExt,
    DistributedLeafExec, DistributedMetricsFormat, ScaleUpLeafNodeEvent,
    ScaleUpLeafNodeEventResponse, SessionStateBuilderExt, WorkerResolver,
    rewrite_distributed_plan_with_metrics,
};
use traceql_exec::engine::RemoteMetrics;
use traceql_exec::source::{TempoScan, TempoScanExec};
use url::Url;

use crate::ClusterError;
use crate::channels::{TimedChannels, Timeouts};
use crate::codec::TraceqlCodec;
use crate::functions::{CollectFunctions, ShippedFunctions};

/// The environment variable that names the workers when `--cluster` is not given.
pub const CLUSTER_ENV: &str = "TRACEQL_CLUSTER";

/// The environment variable that sets [`Cluster::with_partition_bytes`].
pub const PARTITION_BYTES_ENV: &str = "TRACEQL_CLUSTER_PARTITION_BYTES";

/// The workers a coordinator plans over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    workers: Vec<Url>,
    timeouts: Timeouts,
    partition_bytes: Option<usize>,
}

impl Cluster {
    /// The workers of a comma-separated list of URLs (`http://10.0.0.5:7070`) or
    /// `host:port` pairs (read as `http://`).
    pub fn parse(list: &str) -> Result<Cluster, ClusterError> {
        let mut workers = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let text = if item.contains("://") {
                item.to_string()
            } else {
                format!("http://{item}")
            };
            let url = Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    ClusterError::Config(format!(
                        "`{item}` is not a worker address: write host:port or http://host:port"
                    ))
                })?;
            if url.port_or_known_default().is_none() {
                return Err(ClusterError::Config(format!("`{item}` names no port")));
            }
            workers.push(url);
        }
        if workers.is_empty() {
            return Err(ClusterError::Config(
                "no workers given: pass --cluster host:port[,host:port…]".to_string(),
            ));
        }
        Ok(Cluster {
            workers,
            timeouts: Timeouts::default(),
            partition_bytes: None,
        })
    }

    /// The same workers, given scans that are not read in trace order (metrics queries,
    /// plain filters) once they exceed `bytes` a partition; smaller ones run on the
    /// coordinator. The default is datafusion-distributed's, 16 MiB.
    pub fn with_partition_bytes(mut self, bytes: usize) -> Cluster {
        self.partition_bytes = Some(bytes.max(1));
        self
    }

    /// The same workers, waited on as `timeouts` say.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Cluster {
        self.timeouts = timeouts;
        self
    }

    /// The workers' URLs.
    pub fn workers(&self) -> &[Url] {
        &self.workers
    }

    /// `state`, a traceql engine's session, planning its queries over the workers.
    pub fn session(&self, state: SessionState) -> Result<SessionState, ClusterError> {
        let mut state = SessionStateBuilder::new_from_existing(state)
            .with_distributed_planner()
            .with_distributed_worker_resolver(Workers(self.workers.clone()))
            .with_distributed_channel_resolver(TimedChannels::new(self.timeouts))
            .with_distributed_user_codec(TraceqlCodec)
            .with_distributed_metrics_collection(true)?
            .with_distributed_desired_task_count_handler(keep_order)
            .with_distributed_desired_task_count_handler(scan_tasks)
            .with_distributed_desired_task_count_handler(tempo_tasks)
            .with_distributed_scale_up_leaf_node_handler(share_scan)
            .with_distributed_scale_up_leaf_node_handler(share_files)
            .with_distributed_scale_up_leaf_node_handler(share_tempo)
            .with_distributed_file_scan_config_bytes_per_partition(
                self.partition_bytes.unwrap_or(DEFAULT_PARTITION_BYTES),
            )?
            .with_distributed_option_extension(ShippedFunctions::default())
            .with_physical_optimizer_rule(Arc::new(CollectFunctions))
            .build();
        state
            .config_mut()
            .set_extension(Arc::new(RemoteMetrics(Box::new(|plan| {
                Box::pin(with_worker_metrics(plan))
            }))));
        Ok(state)
    }
}

/// `plan`, which ran, with the metrics the workers sent of their tasks, one value per
/// task (so `explain --analyze` shows each worker's share). Waits for them a few
/// seconds at most: a run cut short may never send them.
async fn with_worker_metrics(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let rewrite =
        rewrite_distributed_plan_with_metrics(Arc::clone(&plan), DistributedMetricsFormat::PerTask);
    match tokio::time::timeout(METRICS_WAIT, rewrite).await {
        Ok(rewritten) => rewritten,
        Err(_) => Ok(plan),
    }
}

/// datafusion-distributed's default for [`Cluster::with_partition_bytes`].
const DEFAULT_PARTITION_BYTES: usize = 16 << 20;

/// How long a finished query waits for its workers' metrics.
const METRICS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// A fixed list of workers.
struct Workers(Vec<Url>);

impl WorkerResolver for Workers {
    fn get_urls(&self) -> Result<Vec<Url>> {
        Ok(self.0.clone())
    }
}

/// The clustered scan of traceql's blocks, if `plan` is one: a Parquet scan that
/// declares its partitioning (each partition holds whole traces, in trace order).
fn clustered_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<&FileScanConfig> {
    let exec = plan.downcast_ref::<DataSourceExec>()?;
    let config = exec.data_source().downcast_ref::<FileScanConfig>()?;
    config.output_partitioning.as_ref().map(|_| config)
}

/// As many tasks for a clustered scan as its bytes fill at the configured bytes a
/// partition (see [`Cluster::with_partition_bytes`]); the planner caps it at the number
/// of workers.
fn scan_tasks(ev: DesiredTaskCountEvent) -> Option<Result<DesiredTaskCountEventResponse>> {
    let config = clustered_scan(ev.plan)?;
    let bytes: u64 = config
        .file_groups
        .iter()
        .flat_map(|g| g.iter())
        .map(|f| f.effective_size())
        .sum();
    Some(Ok(tasks_for(bytes, &ev)))
}

/// As many tasks for a scan of Grafana Tempo's blocks as [`scan_tasks`] gives for the
/// same bytes.
fn tempo_tasks(ev: DesiredTaskCountEvent) -> Option<Result<DesiredTaskCountEventResponse>> {
    let scan = ev.plan.downcast_ref::<TempoScanExec>()?.scan();
    let bytes = scan.parts.iter().map(|p| p.bytes).sum();
    Some(Ok(tasks_for(bytes, &ev)))
}

/// The tasks a scan of `bytes` bytes asks for: as many as fill every partition of a
/// task with the configured bytes a partition.
fn tasks_for(bytes: u64, ev: &DesiredTaskCountEvent) -> DesiredTaskCountEventResponse {
    let per_partition = DistributedConfig::from_session_config(ev.session_config)
        .map(|c| c.file_scan_config_bytes_per_partition)
        .unwrap_or(DEFAULT_PARTITION_BYTES)
        .max(1);
    let partitions = (bytes as usize).div_ceil(per_partition);
    let tasks = partitions.div_ceil(ev.session_config.target_partitions().max(1));
    DesiredTaskCountEventResponse::desired(tasks.max(1))
}

/// One task for a stage that repartitions in order (see the module docs).
fn keep_order(ev: DesiredTaskCountEvent) -> Option<Result<DesiredTaskCountEventResponse>> {
    let repartition = ev.plan.downcast_ref::<RepartitionExec>()?;
    repartition
        .preserve_order()
        .then(|| Ok(DesiredTaskCountEventResponse::maximum(1)))
}

/// Each task's share of a clustered scan: the scan's byte ranges, in trace order, cut
/// into contiguous pieces of equal bytes, one per partition of each task.
///
/// Cutting a range anywhere keeps row groups whole: Parquet readers read the row groups
/// whose first page starts in their range. And a trace never straddles row groups. So
/// the pieces are whole traces, in order, and balanced to within a row group.
fn share_scan(ev: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let config = clustered_scan(ev.plan)?;
    let partitions = ev.plan.output_partitioning().partition_count().max(1);
    let files: Vec<&PartitionedFile> = config.file_groups.iter().flat_map(|g| g.iter()).collect();
    let ranges: Vec<(i64, i64)> = files
        .iter()
        .map(|f| match &f.range {
            Some(r) => (r.start, r.end),
            None => (0, f.object_meta.size as i64),
        })
        .collect();
    let mut pieces = byte_pieces(&ranges, ev.task_count * partitions)
        .into_iter()
        .map(|piece| {
            FileGroup::new(
                piece
                    .into_iter()
                    .map(|(i, start, end)| files[i].clone().with_range(start, end))
                    .collect(),
            )
        });
    let variants: Vec<Arc<dyn ExecutionPlan>> = (0..ev.task_count)
        .map(|_| {
            let mut share = config.clone();
            share.file_groups = pieces.by_ref().take(partitions).collect();
            DataSourceExec::from_data_source(share) as Arc<dyn ExecutionPlan>
        })
        .collect();
    Some(
        DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf))),
    )
}

/// Each task's share of a scan that is not clustered (no declared partitioning): its
/// files split into byte ranges as datafusion-distributed's own handler splits them
/// (DataFusion's `FileGroupPartitioner`, order kept within each group), dealt round
/// robin, and each task's list of groups padded with empty ones to the same length.
/// Its own handler leaves them unpadded, and when a small scan splits into fewer groups
/// than partitions times tasks, the tasks' plans have different partition counts and
/// the query fails ("Different partition count … in two different variants").
fn share_files(ev: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let exec = ev.plan.downcast_ref::<DataSourceExec>()?;
    let config = exec.data_source().downcast_ref::<FileScanConfig>()?;
    if config.output_partitioning.is_some() {
        return None;
    }
    let partitions = ev.plan.output_partitioning().partition_count().max(1);
    let tasks = ev.task_count.max(1);
    let groups = FileGroupPartitioner::new()
        .with_target_partitions(partitions * tasks)
        .with_repartition_file_min_size(0)
        .with_preserve_order_within_groups(!config.output_ordering.is_empty())
        .repartition_file_groups(&config.file_groups)
        .unwrap_or_else(|| config.file_groups.clone());
    let mut shares: Vec<Vec<FileGroup>> = vec![Vec::new(); tasks];
    for (i, group) in groups.into_iter().enumerate() {
        shares[i % tasks].push(group);
    }
    let width = shares.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let variants: Vec<Arc<dyn ExecutionPlan>> = shares
        .into_iter()
        .map(|mut groups| {
            groups.resize_with(width, || FileGroup::new(Vec::new()));
            let mut share = config.clone();
            share.file_groups = groups;
            DataSourceExec::from_data_source(share) as Arc<dyn ExecutionPlan>
        })
        .collect();
    Some(
        DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf))),
    )
}

/// Each task's share of a scan of Grafana Tempo's blocks: its parts (row groups, or
/// slices of one) dealt to the tasks largest first, each to the task with the fewest
/// bytes so far, and every task given the same number of partitions. Tempo's scan
/// declares no order and no partitioning, so any share of its parts will do.
fn share_tempo(ev: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let exec = ev.plan.downcast_ref::<TempoScanExec>()?;
    let scan = exec.scan();
    let shares = deal(
        &scan.parts.iter().map(|p| p.bytes).collect::<Vec<_>>(),
        ev.task_count,
    );
    let width = shares.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let variants: Result<Vec<Arc<dyn ExecutionPlan>>> = shares
        .into_iter()
        .map(|share| {
            let share = TempoScan {
                parts: share.into_iter().map(|i| scan.parts[i].clone()).collect(),
                partitions: width,
                ..scan.clone()
            };
            let exec = TempoScanExec::of(share, Arc::clone(exec.table_schema()))?;
            Ok(Arc::new(exec) as Arc<dyn ExecutionPlan>)
        })
        .collect();
    Some(variants.and_then(|variants| {
        DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf)))
    }))
}

/// Items of sizes `sizes` dealt to `tasks` tasks, largest first, each to the task with
/// the least so far: each task's item indexes, in their first order.
pub(crate) fn deal(sizes: &[u64], tasks: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut shares: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); tasks.max(1)];
    for i in order {
        let least = (0..shares.len())
            .min_by_key(|&t| (shares[t].0, shares[t].1.len()))
            .unwrap_or(0);
        shares[least].0 += sizes[i];
        shares[least].1.push(i);
    }
    shares
        .into_iter()
        .map(|(_, mut items)| {
            items.sort_unstable();
            items
        })
        .collect()
}

/// `ranges` (byte ranges `[start, end)` of files, in order) cut into `pieces` contiguous
/// pieces of equal bytes, each a list of `(range index, start, end)`; a piece may be
/// empty when there are fewer bytes than pieces.
pub(crate) fn byte_pieces(ranges: &[(i64, i64)], pieces: usize) -> Vec<Vec<(usize, i64, i64)>> {
    let pieces = pieces.max(1) as i128;
    let total: i128 = ranges.iter().map(|&(s, e)| (e - s).max(0) as i128).sum();
    let mut out: Vec<Vec<(usize, i64, i64)>> = vec![Vec::new(); pieces as usize];
    // Where piece k ends in the concatenated bytes.
    let end_of = |k: i128| total * (k + 1) / pieces;
    let (mut k, mut before) = (0i128, 0i128);
    for (i, &(start, end)) in ranges.iter().enumerate() {
        let mut from = start;
        while from < end {
            let room = end_of(k) - (before + (from - start) as i128);
            if room <= 0 && k + 1 < pieces {
                k += 1;
                continue;
            }
            let to = if k + 1 < pieces {
                end.min(from + room as i64)
            } else {
                end
            };
            out[k as usize].push((i, from, to));
            from = to;
        }
        before += (end - start).max(0) as i128;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of each piece, checking that the pieces cover the ranges once, in order.
    fn sums(ranges: &[(i64, i64)], pieces: usize) -> Vec<i64> {
        let cut = byte_pieces(ranges, pieces);
        assert_eq!(cut.len(), pieces);
        let flat: Vec<(usize, i64, i64)> = cut.iter().flatten().copied().collect();
        let mut next = (0, ranges.first().map_or(0, |r| r.0));
        for &(i, s, e) in &flat {
            if i != next.0 {
                assert_eq!(
                    (next.1, i),
                    (ranges[next.0].1, next.0 + 1),
                    "whole ranges, in order"
                );
                next = (i, ranges[i].0);
            }
            assert_eq!(s, next.1, "contiguous");
            assert!(e > s);
            next.1 = e;
        }
        cut.iter()
            .map(|p| p.iter().map(|(_, s, e)| e - s).sum())
            .collect()
    }

    #[test]
    fn pieces_are_contiguous_and_equal() {
        assert_eq!(sums(&[(4, 104)], 4), vec![25, 25, 25, 25]);
        assert_eq!(sums(&[(0, 10), (0, 30)], 2), vec![20, 20]);
        assert_eq!(sums(&[(4, 50), (50, 100), (0, 4)], 3), vec![33, 33, 34]);
        assert_eq!(sums(&[(0, 2)], 4).iter().sum::<i64>(), 2);
        assert_eq!(sums(&[], 3), vec![0, 0, 0]);
    }

    /// A scan in trace order of `files` blocks of `size` bytes each.
    fn ordered_scan(files: usize, size: u64) -> Arc<dyn ExecutionPlan> {
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
        use datafusion::execution::object_store::ObjectStoreUrl;
        use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
        use datafusion::physical_plan::expressions::col;
        let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::UInt64, false)]));
        let order = LexOrdering::new(vec![PhysicalSortExpr::new_default(
            col("t", &schema).unwrap(),
        )])
        .unwrap();
        let groups = (0..files)
            .map(|i| {
                FileGroup::new(vec![PartitionedFile::new(
                    format!("b{i}/data.parquet"),
                    size,
                )])
            })
            .collect();
        let config = FileScanConfigBuilder::new(
            ObjectStoreUrl::local_filesystem(),
            Arc::new(ParquetSource::new(Arc::clone(&schema))),
        )
        .with_file_groups(groups)
        .with_output_ordering(vec![order])
        .build();
        DataSourceExec::from_data_source(config)
    }

    #[test]
    fn every_task_of_a_scan_gets_as_many_partitions() {
        let config = datafusion::prelude::SessionConfig::new();
        for (files, tasks) in [(11, 4), (3, 2), (1, 4), (5, 3)] {
            let plan = ordered_scan(files, 1 << 20);
            let leaf = share_files(ScaleUpLeafNodeEvent {
                plan: &plan,
                task_count: tasks,
                session_config: &config,
            })
            .expect("a scan of files")
            .expect("shared out")
            .plan;
            let leaf = leaf.downcast_ref::<DistributedLeafExec>().unwrap();
            let mut seen = Vec::new();
            let mut widths = Vec::new();
            for variant in leaf.variants() {
                let exec = variant.downcast_ref::<DataSourceExec>().unwrap();
                let scan = exec.data_source().downcast_ref::<FileScanConfig>().unwrap();
                widths.push(scan.file_groups.len());
                for file in scan.file_groups.iter().flat_map(|g| g.iter()) {
                    let range = file.range.as_ref().map(|r| (r.start, r.end));
                    seen.push((file.object_meta.location.to_string(), range));
                }
            }
            assert_eq!(widths.len(), tasks);
            assert!(
                widths.iter().all(|&w| w == widths[0]),
                "{files} files: {widths:?}"
            );
            let mut names: Vec<String> = seen.iter().map(|(n, _)| n.clone()).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), files, "every file is read");
        }
    }

    #[test]
    fn tempo_parts_are_dealt_evenly_and_once() {
        let shares = deal(&[10, 10, 10, 10, 40, 5, 5], 2);
        let mut all: Vec<usize> = shares.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        let sizes = [10u64, 10, 10, 10, 40, 5, 5];
        let bytes: Vec<u64> = shares
            .iter()
            .map(|s| s.iter().map(|&i| sizes[i]).sum())
            .collect();
        assert_eq!(bytes, vec![45, 45]);
        assert_eq!(deal(&[1], 3).iter().map(Vec::len).sum::<usize>(), 1);
        assert_eq!(deal(&[], 2), vec![Vec::<usize>::new(), Vec::new()]);
    }

    #[test]
    fn worker_lists_parse_and_bad_ones_are_named() {
        let c = Cluster::parse("127.0.0.1:7070, http://w2:7071").unwrap();
        assert_eq!(
            c.workers()
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>(),
            ["http://127.0.0.1:7070/", "http://w2:7071/"]
        );
        for bad in ["", " , ", "ftp://x:1", "http://"] {
            assert!(Cluster::parse(bad).is_err(), "{bad}");
        }
        let err = Cluster::parse("a b:1").unwrap_err().to_string();
        assert!(err.contains("`a b:1`"), "{err}");
    }
}

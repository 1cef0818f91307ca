//! Running a plan over some blocks, with statistics, and naming the block that broke
//! a failed run.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;
use traceql_format::facts::Facts;

use super::memory::QueryPool;
use super::{Engine, EngineError, QueryStats};
use crate::source::{Block, ScanOrder};
use crate::table::SpanTable;

/// What a plan that ran, parts of it on other machines, did there: given the plan
/// after its run, the same plan with the metrics of its remote parts in place (a
/// session that runs plans on a cluster sets it as an extension of its configuration,
/// see traceql-cluster). [`QueryStats`] and `explain --analyze` read those metrics.
#[allow(clippy::type_complexity)]
pub struct RemoteMetrics(
    pub  Box<
        dyn Fn(
                Arc<dyn ExecutionPlan>,
            ) -> futures::future::BoxFuture<
                'static,
                Result<Arc<dyn ExecutionPlan>, DataFusionError>,
            > + Send
            + Sync,
    >,
);

impl Engine {
    /// Runs `plan`, a plan over `blocks`, and returns its rows. Adds to `stats` the time
    /// to plan it physically and to run it, what its scan read, and one round. A failure
    /// caused by a missing or corrupt block names the block.
    pub(crate) async fn execute(
        &self,
        plan: &LogicalPlan,
        blocks: &[&(Block, Facts)],
        stats: &mut QueryStats,
    ) -> Result<Vec<RecordBatch>, EngineError> {
        Ok(self.run(plan, blocks, stats).await?.0)
    }

    /// Runs `plan` as [`Self::execute`] does, handing each batch to `each` as it is
    /// produced instead of collecting them, so only a few batches are held at a time and
    /// `each` works while the scan goes on. `whole`: the plan reads its blocks whole, not
    /// a window of them (see [`Self::prepare`]). Returns the physical plan that ran, with the
    /// metrics of each of its operators.
    pub(crate) async fn execute_each(
        &self,
        plan: &LogicalPlan,
        blocks: &[&(Block, Facts)],
        whole: bool,
        stats: &mut QueryStats,
        mut each: impl FnMut(RecordBatch) -> Result<(), EngineError>,
    ) -> Result<Arc<dyn ExecutionPlan>, EngineError> {
        let started = Instant::now();
        let (state, plan) = match self.prepare(plan, blocks, whole) {
            Ok(prepared) => prepared,
            Err(e) => return Err(self.diagnose(e, blocks).await),
        };
        let physical = match state.create_physical_plan(&plan).await {
            Ok(physical) => physical,
            Err(e) => return Err(self.diagnose(e, blocks).await),
        };
        let planned = Instant::now();
        stats.planning += planned - started;
        let stream = self
            .task_context(&state)
            .and_then(|context| execute_stream(Arc::clone(&physical), context));
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => return Err(self.diagnose(e, blocks).await),
        };
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(batch) => each(batch)?,
                Err(e) => return Err(self.diagnose(e, blocks).await),
            }
            // When batches are always ready, the loop would never give way: a caller
            // racing the query against a cancellation (Ctrl-C in the REPL) must get to
            // see it between batches.
            yield_now().await;
        }
        drop(stream);
        let physical = match state.config().get_extension::<RemoteMetrics>() {
            Some(remote) => match (remote.0)(physical).await {
                Ok(physical) => physical,
                Err(e) => return Err(self.diagnose(e, blocks).await),
            },
            None => physical,
        };
        stats.collect(&physical);
        stats.execution += planned.elapsed();
        stats.rounds += 1;
        Ok(physical)
    }

    /// As [`Self::execute`], and also returns the physical plan that ran, with the
    /// metrics of each of its operators.
    pub(crate) async fn run(
        &self,
        plan: &LogicalPlan,
        blocks: &[&(Block, Facts)],
        stats: &mut QueryStats,
    ) -> Result<(Vec<RecordBatch>, Arc<dyn ExecutionPlan>), EngineError> {
        let mut batches = Vec::new();
        let physical = self
            .execute_each(plan, blocks, true, stats, |batch| {
                batches.push(batch);
                Ok(())
            })
            .await?;
        Ok((batches, physical))
    }

    /// `plan`, a plan over `blocks`, as it is planned physically, and the session state
    /// to plan it in.
    ///
    /// The span-set operators need all spans of a trace in one partition, in trace
    /// order. Over traceql's blocks in which every trace is whole, the scan is cut into
    /// runs of whole row groups in trace order, one per partition (see
    /// [`ScanOrder::Clustered`]): nothing is repartitioned, and one large block is read on
    /// every core. All matches of `{ kind = server } > { span.db.system = "postgresql" }`
    /// took 175 ms at 1M spans (one block of 1M, one of 27k) before and 127 ms after,
    /// 1.55 and 1.20 s at 10M. Where blocks overlap in time (or hold traces in parts),
    /// DataFusion repartitions by trace, merging in trace order; with more blocks than
    /// partitions it is given their ranges of trace starts (from their footers) so that
    /// it fills each partition with blocks that follow one another in time instead of
    /// sorting every span. Those statistics cost planning 1.5 ms at 10M spans (11
    /// blocks), so a clustered scan asks for them only when it falls back.
    ///
    /// Plans without them that read their blocks `whole` (metrics queries, and searches
    /// in one round over everything) need no order at all: their scan forgets it (see
    /// [`ScanOrder::Any`]), so that a large block is split over the partitions. At 1M
    /// spans in one large block, `rate()` by service took 52 ms with the order and 36 ms
    /// without, `{ event:name = "exception" }` 140 and 80 ms. Rounds of a time or duration
    /// window keep it: they read a few pages, where splitting cost 2–3 ms a query.
    ///
    /// Aggregating plans (metrics queries) filter decoded batches instead of pushing
    /// their filters into the Parquet reader. They aggregate every matching span, mostly
    /// of broad selections (`{ }`, `{ kind = server }`), where decoding only the matching
    /// rows of the other columns saves little and tracking those rows costs more:
    /// `quantile_over_time` by service over `{ kind = server }` on 10M spans took 0.49 s
    /// with the filter pushed down and 0.33 s without. Searches keep it pushed down: a
    /// selective search (`{ status = error }`) reads twice as fast with it.
    pub(crate) fn prepare(
        &self,
        plan: &LogicalPlan,
        blocks: &[&(Block, Facts)],
        whole: bool,
    ) -> Result<(SessionState, LogicalPlan), DataFusionError> {
        let mut state = self.query_state();
        let ordered = blocks
            .iter()
            .filter(|(b, _)| b.layout().trace_order)
            .count();
        let per_trace = plan.exists(|node| Ok(matches!(node, LogicalPlan::Extension(_))))?;
        let aggregates = plan.exists(|node| Ok(matches!(node, LogicalPlan::Aggregate(_))))?;
        let options = state.config_mut().options_mut();
        if aggregates {
            options.execution.parquet.pushdown_filters = false;
        }
        let whole_traces = blocks.iter().all(|(b, _)| b.layout().whole_traces);
        // A clustered scan reads the footers itself, and asks for the statistics only if
        // its blocks overlap.
        let clustered = per_trace && whole_traces && ordered == blocks.len();
        if per_trace && !clustered && ordered > options.execution.target_partitions {
            options.execution.collect_statistics = true;
            options.execution.split_file_groups_by_statistics = true;
        }
        let order = if clustered {
            ScanOrder::Clustered
        } else if !per_trace && whole {
            ScanOrder::Any
        } else {
            return Ok((state, plan.clone()));
        };
        let plan = plan
            .clone()
            .transform_up(|node| match &node {
                LogicalPlan::TableScan(scan) => {
                    let provider = source_as_provider(&scan.source)?;
                    Ok(match provider.downcast_ref::<SpanTable>() {
                        Some(table) => {
                            let table = table.clone().with_order(order);
                            let mut scan = scan.clone();
                            scan.source = provider_as_source(Arc::new(table));
                            Transformed::yes(LogicalPlan::TableScan(scan))
                        }
                        None => Transformed::no(node),
                    })
                }
                _ => Ok(Transformed::no(node)),
            })?
            .data;
        Ok((state, plan))
    }

    /// A copy of the engine's session state for one query, with a configuration of its
    /// own: what planning records in it (the field expressions traceql-cluster ships
    /// with a query) is this query's alone, though others plan at the same time.
    pub(crate) fn query_state(&self) -> SessionState {
        let mut state = self.ctx.state();
        // The session holds the same configuration: this copies it.
        state.config_mut().options_mut();
        state
    }

    /// What a plan prepared in `state` runs with: the engine's memory pool, or a pool of
    /// its own within it where one query's memory is limited.
    fn task_context(&self, state: &SessionState) -> Result<Arc<TaskContext>, DataFusionError> {
        let context = TaskContext::from(state);
        let Some(limit) = self.query_memory_limit else {
            return Ok(Arc::new(context));
        };
        let runtime = context.runtime_env();
        let pool = QueryPool::new(Arc::clone(&runtime.memory_pool), limit);
        let runtime = RuntimeEnvBuilder::from_runtime_env(&runtime)
            .with_memory_pool(Arc::new(pool))
            .build_arc()?;
        Ok(Arc::new(context.with_runtime(runtime)))
    }

    /// The error of a failed run, or, if a block's data file is missing or corrupt,
    /// an error naming that block (DataFusion's own message does not).
    pub(crate) async fn diagnose(
        &self,
        e: DataFusionError,
        blocks: &[&(Block, Facts)],
    ) -> EngineError {
        let limit = self
            .query_memory_limit
            .map_or(self.memory_limit, |query| query.min(self.memory_limit));
        let error = EngineError::with_memory_limit(e, limit);
        if matches!(error, EngineError::Execution(_)) {
            for (block, _) in blocks.iter().filter(|(b, _)| b.stored()) {
                if let Err(broken) = self.store.check_data(&block.meta().id).await {
                    return EngineError::Store(broken);
                }
            }
        }
        error
    }
}

/// Returns `Pending` once (asking to be polled again at once), so that other futures
/// polled beside this one, in a `select!` say, get their turn.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}

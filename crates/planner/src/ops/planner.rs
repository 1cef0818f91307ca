//! Physical planning of the span-set operators: an `ExtensionPlanner` that turns each
//! logical [`TraceNode`] into its [`TraceExec`], and a `QueryPlanner` that installs it.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::memory_pool::MemoryLimit;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::buffer::BufferExec;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::prelude::SessionContext;

use super::exec::TraceExec;
use super::node::TraceNode;

/// Plans the span-set operators' logical nodes.
#[derive(Debug, Default)]
pub struct TraceqlExtensionPlanner;

#[async_trait]
impl ExtensionPlanner for TraceqlExtensionPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<TraceNode>() else {
            return Ok(None);
        };
        let input = Arc::clone(&physical_inputs[0]);
        let input = if contains_trace_exec(&input) {
            input
        } else {
            read_ahead(input, session)
        };
        let exec = TraceExec::try_new(input, node.op().clone())?;
        Ok(Some(Arc::new(exec)))
    }
}

/// The most a partition of the spans under the span-set operators reads ahead.
const READ_AHEAD_BYTES: usize = 128 << 20;

/// `input` reading ahead of what is consumed, up to [`READ_AHEAD_BYTES`] per partition
/// (at most an eighth of a finite memory limit, and counted in it).
///
/// Where the scan is repartitioned by trace (blocks that overlap in time), each
/// partition of the span-set operators merges the scan's partitions in trace order, and
/// those hold blocks that follow one another in time: the merge wants one partition's
/// spans at a time, and without reading ahead the others would wait instead of decoding
/// their next blocks. Over a scan in runs of row groups (no merge), it lets decoding run
/// ahead of the operator.
fn read_ahead(input: Arc<dyn ExecutionPlan>, session: &dyn Session) -> Arc<dyn ExecutionPlan> {
    let capacity = match session.runtime_env().memory_pool.memory_limit() {
        MemoryLimit::Finite(limit) => READ_AHEAD_BYTES.min(limit / 8),
        _ => READ_AHEAD_BYTES,
    };
    Arc::new(BufferExec::new(input, capacity))
}

/// Whether a span-set operator runs in `plan` (whose output is then already partitioned
/// and ordered by trace).
fn contains_trace_exec(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.downcast_ref::<TraceExec>().is_some()
        || plan.children().into_iter().any(contains_trace_exec)
}

/// A query planner that knows the span-set operators.
#[derive(Debug, Default)]
pub struct TraceqlQueryPlanner;

#[async_trait]
impl QueryPlanner for TraceqlQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(TraceqlExtensionPlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

/// `state` with the span-set operators' query planner installed.
pub fn with_trace_operators(state: SessionState) -> SessionState {
    datafusion::execution::SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(TraceqlQueryPlanner))
        .build()
}

/// A copy of `ctx` that can run plans with span-set operators.
pub fn install(ctx: &SessionContext) -> SessionContext {
    SessionContext::new_with_state(with_trace_operators(ctx.state()))
}

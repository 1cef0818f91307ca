//! Physical planning of the span-set operators: an `ExtensionPlanner` that turns each
//! logical [`TraceNode`] into its [`TraceExec`], and a `QueryPlanner` that installs it.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
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
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<TraceNode>() else {
            return Ok(None);
        };
        let exec = TraceExec::try_new(Arc::clone(&physical_inputs[0]), node.op().clone())?;
        Ok(Some(Arc::new(exec)))
    }
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

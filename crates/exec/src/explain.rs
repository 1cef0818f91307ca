//! `explain`: the canonical query, its syntax tree, and the logical and physical plans
//! of a search or of each metrics function; with `analyze`, the plans as they ran, with
//! the rows, bytes and time of every operator.

use std::sync::Arc;

use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::display::DisplayableExecutionPlan;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use traceql_parser::Query;
use traceql_parser::ast::QueryBody;

use crate::engine::{Engine, EngineError, QueryStats, TimeRange, parse};
use crate::search::{SearchOptions, search_pipeline};

/// A query as it ran, as `traceql explain --analyze` shows it.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The query in canonical form.
    pub canonical: String,
    /// Each plan that ran (one for a search, one per metrics function), with the
    /// metrics of every operator: output rows, time spent, and for scans the bytes read
    /// and the row groups and rows pruned.
    pub plans: Vec<String>,
    /// The totals of the whole run.
    pub stats: QueryStats,
}

/// A plan and its parts, as `traceql explain` shows them.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The query in canonical form.
    pub canonical: String,
    /// The syntax tree as JSON.
    pub ast: String,
    /// The optimised logical plan.
    pub logical: String,
    /// The physical plan.
    pub physical: String,
}

impl Engine {
    /// The plans of `query`; for a metrics query, the plan of each metrics function
    /// over the store's whole time span, one after the other.
    pub async fn explain(&self, query: &str) -> Result<Explanation, EngineError> {
        let parsed = parse(query)?;
        let plans = self.plans(&parsed).await?;
        let blocks = self.select(&TimeRange::ALL, search_pipeline(&parsed));
        let (mut logical, mut physical) = (Vec::new(), Vec::new());
        for plan in plans {
            let (state, plan) = self.prepare(&plan, &blocks, true)?;
            logical.push(state.optimize(&plan)?.display_indent().to_string());
            let exec: Arc<dyn ExecutionPlan> = state.create_physical_plan(&plan).await?;
            physical.push(displayable(exec.as_ref()).indent(false).to_string());
        }
        Ok(Explanation {
            canonical: parsed.to_string(),
            ast: serde_json::to_string_pretty(&parsed).unwrap_or_default(),
            logical: logical.join("\n"),
            physical: physical.join("\n"),
        })
    }

    /// Runs `query` over the whole store (a search without a limit: every match) and
    /// returns its plans as they ran, with each operator's metrics.
    pub async fn explain_analyze(&self, query: &str) -> Result<Analysis, EngineError> {
        let parsed = parse(query)?;
        let plans = self.plans(&parsed).await?;
        let blocks = self.select(&TimeRange::ALL, search_pipeline(&parsed));
        let mut stats = QueryStats {
            blocks: blocks.len() as u64,
            ..QueryStats::default()
        };
        let io = self.store.io();
        let mut shown = Vec::new();
        for plan in plans {
            let (_, physical) = self.run(&plan, &blocks, &mut stats).await?;
            shown.push(
                DisplayableExecutionPlan::with_metrics(physical.as_ref())
                    .indent(false)
                    .to_string(),
            );
        }
        stats.io = self.store.io().since(io);
        Ok(Analysis {
            canonical: parsed.to_string(),
            plans: shown,
            stats,
        })
    }

    /// The logical plans of a query: a search's plan over every block, or the plan of
    /// each metrics function over the store's whole time span.
    async fn plans(&self, parsed: &Query) -> Result<Vec<LogicalPlan>, EngineError> {
        Ok(if matches!(parsed.body, QueryBody::Metrics(_)) {
            self.metrics_plans(parsed).await?
        } else {
            vec![
                self.plan_parsed(parsed, &SearchOptions::default())
                    .await?
                    .plan,
            ]
        })
    }
}

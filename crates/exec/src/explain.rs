//! `explain`: the canonical query, its syntax tree, and the logical and physical plans
//! of a search or of each metrics function.

use std::sync::Arc;

use datafusion::physical_plan::{ExecutionPlan, displayable};
use traceql_parser::ast::QueryBody;

use crate::engine::{Engine, EngineError, parse};
use crate::search::SearchOptions;

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
        let plans = if matches!(parsed.body, QueryBody::Metrics(_)) {
            self.metrics_plans(&parsed).await?
        } else {
            vec![self.plan(query, &SearchOptions::default()).await?.1.plan]
        };
        let state = self.ctx.state();
        let (mut logical, mut physical) = (Vec::new(), Vec::new());
        for plan in plans {
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
}

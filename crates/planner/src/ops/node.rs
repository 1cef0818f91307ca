//! The logical extension node shared by the span-set operators.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};

use super::{TraceOp, TraceOperator};

/// A span-set operator over its input plan: the input's columns plus the operator's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceNode {
    input: LogicalPlan,
    op: TraceOp,
    schema: DFSchemaRef,
}

impl TraceNode {
    /// The node applying `op` to `input`.
    pub fn try_new(input: LogicalPlan, op: TraceOp) -> Result<Self> {
        let added = DFSchema::from_unqualified_fields(op.outputs().into(), Default::default())?;
        let schema = Arc::new(input.schema().join(&added)?);
        Ok(TraceNode { input, op, schema })
    }

    /// The node as a logical plan.
    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(self),
        })
    }

    /// The operator.
    pub fn op(&self) -> &TraceOp {
        &self.op
    }
}

impl PartialOrd for TraceNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.op.partial_cmp(&other.op)? {
            Ordering::Equal => self.input.partial_cmp(&other.input),
            ordering => Some(ordering),
        }
    }
}

impl UserDefinedLogicalNodeCore for TraceNode {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: ", self.op.name())?;
        self.op.describe(f)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        Self::try_new(inputs.swap_remove(0), self.op.clone())
    }
}

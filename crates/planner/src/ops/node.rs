//! The logical extension node shared by the span-set operators.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};

use super::TraceOperator;

/// A span-set operator over its input plan: the input's columns plus the operator's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceNode<O> {
    input: LogicalPlan,
    op: O,
    schema: DFSchemaRef,
}

impl<O: TraceOperator> TraceNode<O> {
    /// The node applying `op` to `input`.
    pub fn try_new(input: LogicalPlan, op: O) -> Result<Self> {
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
    pub fn op(&self) -> &O {
        &self.op
    }
}

impl<O: TraceOperator> PartialOrd for TraceNode<O> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.op.partial_cmp(&other.op)? {
            Ordering::Equal => self.input.partial_cmp(&other.input),
            ordering => Some(ordering),
        }
    }
}

impl<O: TraceOperator> UserDefinedLogicalNodeCore for TraceNode<O> {
    fn name(&self) -> &str {
        O::NAME
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
        write!(f, "{}: ", O::NAME)?;
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

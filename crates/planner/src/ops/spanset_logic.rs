//! Spanset `&&` and `||`: per input spanset X, with L and R the operands' results on
//! X, `&&` gives L ∪ R when both are non-empty and `||` gives L ∪ R.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Builder, RecordBatch};
use datafusion::arrow::datatypes::Field;
use datafusion::error::Result;

use super::{TraceOperator, membership, membership_field, spanset_ids};

/// Spanset `&&` (both sides must match) or `||` (either side).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub enum Logic {
    /// `&&`
    And,
    /// `||`
    Or,
}

/// Combines two membership columns into a third.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct SpansetLogic {
    /// Which operator.
    pub op: Logic,
    /// Membership column of the left operand.
    pub lhs: String,
    /// Membership column of the right operand.
    pub rhs: String,
    /// The membership column written.
    pub output: String,
}

impl TraceOperator for SpansetLogic {
    fn name(&self) -> &'static str {
        "SpansetLogic"
    }

    fn outputs(&self) -> Vec<Field> {
        vec![membership_field(&self.output)]
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Logic::And => "&&",
            Logic::Or => "||",
        };
        write!(f, "{} := {} {op} {}", self.output, self.lhs, self.rhs)
    }

    fn evaluate(&self, batch: &RecordBatch, traces: &[Range<usize>]) -> Result<Vec<ArrayRef>> {
        let (l, r) = (membership(batch, &self.lhs)?, membership(batch, &self.rhs)?);
        let mut out = Int32Builder::with_capacity(batch.num_rows());
        for trace in traces {
            let (left_ids, right_ids) = (
                spanset_ids(&[l], trace.clone()),
                spanset_ids(&[r], trace.clone()),
            );
            for row in trace.clone() {
                let id = [l, r]
                    .iter()
                    .find(|m| m.is_valid(row))
                    .map(|m| m.value(row));
                let keep = id.filter(|id| match self.op {
                    Logic::Or => true,
                    Logic::And => left_ids.contains(id) && right_ids.contains(id),
                });
                out.append_option(keep);
            }
        }
        Ok(vec![Arc::new(out.finish())])
    }
}

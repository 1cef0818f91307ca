//! `by(e)`: splits each spanset into one spanset per distinct value of `e` (spans where
//! `e` is nil form a group of their own). New spanset ids are numbered per trace in
//! order of first appearance.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int32Builder, RecordBatch};
use datafusion::arrow::datatypes::Field;
use datafusion::arrow::row::{Row, RowConverter, SortField};
use datafusion::error::{DataFusionError, Result};

use super::{TraceOperator, membership, membership_field};

/// `by(e)` over the spansets of a membership column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct GroupBy {
    /// `e` as TraceQL prints it.
    pub label: String,
    /// Membership column of the input spansets.
    pub input: String,
    /// Column with the group key of each span (its value; null for nil).
    pub key: String,
    /// The membership column written.
    pub output: String,
}

impl TraceOperator for GroupBy {
    fn name(&self) -> &'static str {
        "GroupBy"
    }

    fn outputs(&self) -> Vec<Field> {
        vec![membership_field(&self.output)]
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} := {} | by({})", self.output, self.input, self.label)
    }

    fn evaluate(&self, batch: &RecordBatch, traces: &[Range<usize>]) -> Result<Vec<ArrayRef>> {
        let input = membership(batch, &self.input)?;
        let key = batch.column_by_name(&self.key).ok_or_else(|| {
            DataFusionError::Internal(format!("by(): no key column `{}`", self.key))
        })?;
        // Keys compared as Arrow's row format encodes them: equal values, equal rows.
        let converter = RowConverter::new(vec![SortField::new(key.data_type().clone())])?;
        let keys = converter.convert_columns(std::slice::from_ref(key))?;
        let mut out = Int32Builder::with_capacity(batch.num_rows());
        for trace in traces {
            let mut groups: Vec<(i32, Row<'_>)> = Vec::new();
            for row in trace.clone() {
                if input.is_null(row) {
                    out.append_null();
                    continue;
                }
                let group = (input.value(row), keys.row(row));
                let index = match groups.iter().position(|g| *g == group) {
                    Some(i) => i,
                    None => {
                        groups.push(group);
                        groups.len() - 1
                    }
                };
                out.append_value(index as i32);
            }
        }
        Ok(vec![Arc::new(out.finish())])
    }
}

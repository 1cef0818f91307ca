//! Scalar filters over spansets: `count()`, `avg(e)`, `min(e)`, `max(e)` or `sum(e)`
//! compared with a constant. A spanset passes or is dropped whole; the aggregate's
//! value is written beside its spans (shown as a spanset attribute in results).
//! `avg/min/max/sum` skip spans where `e` is nil; a spanset where no span had a value
//! is dropped.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Float64Builder, Int32Builder, RecordBatch,
};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result;
use traceql_parser::ast::{ComparisonOp, Function};

use super::{TraceOperator, column, membership, membership_field, spanset_ids};

/// `aggregate op threshold` over the spansets of a membership column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct AggregateFilter {
    /// The aggregate: one of the functions an `Aggregate` has (`Count`, `Avg`, `Min`,
    /// `Max`, `Sum`; see `Aggregate::function`).
    pub function: Function,
    /// The comparison.
    pub op: ComparisonOp,
    /// The constant compared with, as `f64` bits (so the operator can be hashed).
    pub threshold_bits: u64,
    /// The aggregate as TraceQL prints it, e.g. `avg(duration)`.
    pub label: String,
    /// Membership column of the input spansets.
    pub input: String,
    /// `Float64` column with the aggregated expression per span (not for `count()`).
    pub argument: Option<String>,
    /// The membership column written.
    pub output: String,
    /// The `Float64` column written with the aggregate of each span's spanset.
    pub value: String,
}

impl AggregateFilter {
    /// The constant compared with.
    pub fn threshold(&self) -> f64 {
        f64::from_bits(self.threshold_bits)
    }

    fn passes(&self, value: f64) -> bool {
        let t = self.threshold();
        match self.op {
            ComparisonOp::Eq => value == t,
            ComparisonOp::Neq => value != t,
            ComparisonOp::Lt => value < t,
            ComparisonOp::Lte => value <= t,
            ComparisonOp::Gt => value > t,
            ComparisonOp::Gte => value >= t,
        }
    }

    fn aggregate(&self, values: impl Iterator<Item = f64>, count: usize) -> Option<f64> {
        if self.function == Function::Count {
            return Some(count as f64);
        }
        let (mut n, mut sum, mut min, mut max) = (0usize, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            n += 1;
            sum += v;
            min = min.min(v);
            max = max.max(v);
        }
        (n > 0).then_some(match self.function {
            Function::Avg => sum / n as f64,
            Function::Min => min,
            Function::Max => max,
            // `sum()`: the only aggregate left (`count()` returned above).
            _ => sum,
        })
    }
}

impl TraceOperator for AggregateFilter {
    fn name(&self) -> &'static str {
        "AggregateFilter"
    }

    fn outputs(&self) -> Vec<Field> {
        vec![
            membership_field(&self.output),
            Field::new(&self.value, DataType::Float64, true),
        ]
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} := {} | {} {} {}",
            self.output,
            self.input,
            self.label,
            self.op.as_str(),
            self.threshold()
        )
    }

    fn evaluate(&self, batch: &RecordBatch, traces: &[Range<usize>]) -> Result<Vec<ArrayRef>> {
        let input = membership(batch, &self.input)?;
        let argument = match &self.argument {
            Some(name) => Some(column::<Float64Array>(batch, name)?),
            None => None,
        };
        let rows = batch.num_rows();
        let (mut out, mut values) = (vec![None; rows], vec![None; rows]);
        for trace in traces {
            for id in spanset_ids(&[input], trace.clone()) {
                let members: Vec<usize> = trace
                    .clone()
                    .filter(|&r| input.is_valid(r) && input.value(r) == id)
                    .collect();
                let numbers = members
                    .iter()
                    .filter_map(|&r| argument.and_then(|a| a.is_valid(r).then(|| a.value(r))));
                let Some(value) = self.aggregate(numbers, members.len()) else {
                    continue;
                };
                if self.passes(value) {
                    for &r in &members {
                        out[r] = Some(id);
                        values[r] = Some(value);
                    }
                }
            }
        }
        let mut m = Int32Builder::with_capacity(rows);
        m.extend(out);
        let mut v = Float64Builder::with_capacity(rows);
        v.extend(values);
        Ok(vec![Arc::new(m.finish()), Arc::new(v.finish())])
    }
}

//! The one list of span-set operators: [`TraceOp`] has a variant per operator and
//! implements [`TraceOperator`] by handing each call to it. To add an operator, write its
//! module (a type implementing [`TraceOperator`]) and add one line to the list below.

use std::fmt;
use std::ops::Range;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::Field;
use datafusion::error::Result;

use super::TraceOperator;
use super::aggregate::AggregateFilter;
use super::group_by::GroupBy;
use super::insights::Insights;
use super::service_edges::ServiceEdges;
use super::spanset_logic::SpansetLogic;
use super::structural::Structural;

macro_rules! operators {
    ($($(#[$doc:meta])* $variant:ident($op:ty),)*) => {
        /// A span-set operator: any of those the engine has.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize)]
        pub enum TraceOp {
            $($(#[$doc])* $variant($op),)*
        }

        impl TraceOperator for TraceOp {
            fn name(&self) -> &'static str {
                match self {
                    $(TraceOp::$variant(op) => op.name(),)*
                }
            }

            fn outputs(&self) -> Vec<Field> {
                match self {
                    $(TraceOp::$variant(op) => op.outputs(),)*
                }
            }

            fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(TraceOp::$variant(op) => op.describe(f),)*
                }
            }

            fn evaluate(
                &self,
                batch: &RecordBatch,
                traces: &[Range<usize>],
            ) -> Result<Vec<ArrayRef>> {
                match self {
                    $(TraceOp::$variant(op) => op.evaluate(batch, traces),)*
                }
            }
        }

        $(impl From<$op> for TraceOp {
            fn from(op: $op) -> Self {
                TraceOp::$variant(op)
            }
        })*
    };
}

operators! {
    /// Spanset `&&` and `||` ([`super::spanset_logic`]).
    Logic(SpansetLogic),
    /// The 15 structural operators over nested-set numbers ([`super::structural`]).
    Structural(Structural),
    /// `count()`, `avg()`, `min()`, `max()`, `sum()` compared with a constant
    /// ([`super::aggregate`]).
    Aggregate(AggregateFilter),
    /// `by(…)`, splitting spansets ([`super::group_by`]).
    GroupBy(GroupBy),
    /// The requests between services of each trace ([`super::service_edges`]).
    ServiceEdges(ServiceEdges),
    /// N+1 runs, slow database queries and the critical path ([`super::insights`]).
    Insights(Insights),
}

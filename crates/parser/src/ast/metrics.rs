//! Metrics queries: `{ … } | rate() by (…)`, second stages and arithmetic.

use serde::Serialize;

use super::{ArithmeticOp, ComparisonOp, FieldExpr, FieldRef, Pipeline, ScalarExpr};
use crate::Span;

/// A metrics expression: a query, a constant, arithmetic, or a second stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricsExpr {
    /// What it is.
    pub kind: MetricsExprKind,
    /// Where it is.
    pub span: Span,
}

/// The forms of a [`MetricsExpr`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsExprKind {
    /// `pipeline | function by (…)`.
    Query(MetricsQuery),
    /// A numeric constant (no durations), possibly folded arithmetic: `3 * 2`.
    Constant(ScalarExpr),
    /// `lhs op rhs` with `op` one of `+ - * /`.
    Binary {
        /// The operator.
        op: ArithmeticOp,
        /// Left operand.
        lhs: Box<MetricsExpr>,
        /// Right operand.
        rhs: Box<MetricsExpr>,
    },
    /// `input | topk(n)`, `input | bottomk(n)` or `input > threshold`.
    Stage {
        /// The series the stage applies to.
        input: Box<MetricsExpr>,
        /// The stage.
        stage: SecondStage,
    },
}

/// The first stage of a metrics query.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricsQuery {
    /// The spans to aggregate.
    pub pipeline: Pipeline,
    /// How to aggregate them.
    pub function: MetricsFunction,
    /// `by (…)` grouping; empty when absent.
    pub by: Vec<FieldRef>,
    /// `pipeline | function by (…)`.
    pub span: Span,
}

/// Metrics functions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsFunction {
    /// `rate()`: spans per second.
    Rate,
    /// `count_over_time()`: spans per step.
    CountOverTime,
    /// `min_over_time(field)`.
    MinOverTime(FieldRef),
    /// `max_over_time(field)`.
    MaxOverTime(FieldRef),
    /// `avg_over_time(field)`.
    AvgOverTime(FieldRef),
    /// `sum_over_time(field)`.
    SumOverTime(FieldRef),
    /// `quantile_over_time(field, q, …)`.
    QuantileOverTime {
        /// The field.
        field: FieldRef,
        /// At least one quantile, each in `[0, 1]`.
        quantiles: Vec<f64>,
    },
    /// `histogram_over_time(field)`.
    HistogramOverTime(FieldRef),
    /// `compare({ filter }[, top_n[, start, end]])`.
    Compare {
        /// The selection; `None` is `{ }`.
        filter: Option<FieldExpr>,
        /// Values kept per attribute.
        top_n: Option<i64>,
        /// Selection time range, unix nanoseconds.
        range: Option<(i64, i64)>,
    },
}

impl MetricsFunction {
    /// The function name.
    pub fn name(&self) -> &'static str {
        use super::Function;
        use MetricsFunction::*;
        match self {
            Rate => Function::Rate,
            CountOverTime => Function::CountOverTime,
            MinOverTime(_) => Function::MinOverTime,
            MaxOverTime(_) => Function::MaxOverTime,
            AvgOverTime(_) => Function::AvgOverTime,
            SumOverTime(_) => Function::SumOverTime,
            QuantileOverTime { .. } => Function::QuantileOverTime,
            HistogramOverTime(_) => Function::HistogramOverTime,
            Compare { .. } => Function::Compare,
        }
        .name()
    }

    /// The field the function reads, if it reads one.
    pub fn field(&self) -> Option<&FieldRef> {
        use MetricsFunction::*;
        match self {
            MinOverTime(f) | MaxOverTime(f) | AvgOverTime(f) | SumOverTime(f)
            | HistogramOverTime(f) => Some(f),
            QuantileOverTime { field, .. } => Some(field),
            Rate | CountOverTime | Compare { .. } => None,
        }
    }
}

/// Stages applied to metrics series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondStage {
    /// `| topk(n)`: the n highest series per timestamp.
    TopK(i64),
    /// `| bottomk(n)`: the n lowest series per timestamp.
    BottomK(i64),
    /// `op threshold`: keeps the points that satisfy it.
    Filter {
        /// The comparison.
        op: ComparisonOp,
        /// A numeric constant or a single duration.
        threshold: ScalarExpr,
    },
}

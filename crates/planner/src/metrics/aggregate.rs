//! The plan of the aggregating metrics functions (`rate`, `count_over_time`,
//! `min/max/avg/sum_over_time`, `quantile_over_time`, `histogram_over_time`): one
//! DataFusion aggregate over time buckets and the `by` values.
//!
//! The pipeline selects spans as in a search; each selected span whose start falls in
//! the range gets its bucket number, its `by` values and, for functions over a value,
//! that value. DataFusion's built-in `count`, `min`, `max` and `sum` then aggregate per
//! bucket and series. Histograms and quantiles group by one more key: the value rounded
//! up to a power of two. [`super::series`] turns the aggregate rows into series.

use crate::error::PlanError;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::error::Result;
use datafusion::functions::math::expr_fn::{ceil, log2, power};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, when};
use datafusion::prelude::{ident as col, lit};
use traceql_format::codes::{kind, status};
use traceql_format::facts::Facts;
use traceql_parser::Span;
use traceql_parser::ast::{
    Field, FieldExpr, FieldExprKind, FieldRef, Intrinsic, MetricsFunction, MetricsQuery,
};

use super::time::Buckets;
use super::{BUCKET, COUNT, HISTOGRAM, MAX, MIN, SUM, VALUES};
use crate::eval::udf::{Output, field_expr_call};
use crate::lower::{ExtraValue, plan_pipeline};
use crate::native::{Holds, native_column};

/// How a `by` column holds its label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelKind {
    /// A value column (from the row evaluator), null for nil.
    Value,
    /// Plain text.
    Str,
    /// Integers.
    Int,
    /// Floats.
    Float,
    /// Booleans.
    Bool,
}

/// A `by` label: its name as TraceQL prints it, its column and how it holds values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByLabel {
    /// The label name, e.g. `resource.service.name`.
    pub name: String,
    /// The plan column.
    pub column: String,
    /// What the column holds.
    pub kind: LabelKind,
}

/// A lowered metrics query.
#[derive(Debug, Clone)]
pub struct MetricsPlan {
    /// The aggregate: [`BUCKET`], the `by` columns, [`HISTOGRAM`] for histograms and
    /// quantiles, then [`COUNT`] and, for functions of a value, [`VALUES`], [`MIN`],
    /// [`MAX`] and [`SUM`].
    pub plan: LogicalPlan,
    /// The `by` labels (null for nil).
    pub by: Vec<ByLabel>,
}

fn field_expr(field: &FieldRef) -> FieldExpr {
    FieldExpr {
        kind: FieldExprKind::Field(field.field.clone()),
        span: Span::default(),
    }
}

/// Whether a field's values are durations in nanoseconds.
fn is_duration(field: &FieldRef) -> bool {
    matches!(
        field.field,
        Field::Intrinsic(Intrinsic::Duration | Intrinsic::TraceDuration)
    )
}

/// `value` (of `field`) rounded up to a power of two (durations in seconds), and the
/// condition under which it is counted: durations above 0, whole numbers from 2 up.
fn power_of_two_bound(field: &FieldRef, value: Expr) -> (Expr, Expr) {
    let rounded = power(lit(2.0), ceil(log2(value.clone())));
    if is_duration(field) {
        (value.gt(lit(0.0)), rounded / lit(1e9))
    } else {
        let whole = value
            .clone()
            .gt_eq(lit(2.0))
            .and(value.clone().eq(ceil(value)));
        (whole, rounded)
    }
}

/// A `by` field's value: its plain column where it has exactly one (status and kind
/// as their TraceQL words), else the row evaluator's value column.
fn label_value(field: &FieldRef, schema: &Schema, facts: &Facts) -> Result<(Expr, LabelKind)> {
    // Codes OTLP does not define read as the first (unset, unspecified), as
    // `codes::*::name` reads them.
    let words = |column: Expr, codes: &[i8], name: fn(i8) -> &'static str| {
        let mut case = when(column.clone().eq(lit(codes[0])), lit(name(codes[0])));
        for &code in &codes[1..] {
            case = case.when(column.clone().eq(lit(code)), lit(name(code)));
        }
        case.otherwise(lit(name(codes[0])))
    };
    Ok(match native_column(&field.field, schema, facts) {
        Some((column, Holds::Str)) => (column, LabelKind::Str),
        Some((column, Holds::Int)) => (column, LabelKind::Int),
        Some((column, Holds::Float)) => (column, LabelKind::Float),
        Some((column, Holds::Bool)) => (column, LabelKind::Bool),
        Some((column, Holds::Status)) => {
            (words(column, &status::CODES, status::name)?, LabelKind::Str)
        }
        Some((column, Holds::Kind)) => (words(column, &kind::CODES, kind::name)?, LabelKind::Str),
        _ => (
            field_expr_call(Some(&field_expr(field)), Output::Value, schema, facts)?,
            LabelKind::Value,
        ),
    })
}

/// Lowers `query` over `input`, a scan of the span table that `facts` describe.
pub fn plan_metrics(
    query: &MetricsQuery,
    input: LogicalPlan,
    facts: &Facts,
    buckets: &Buckets,
) -> Result<MetricsPlan> {
    if let MetricsFunction::Compare { .. } = query.function {
        return Err(PlanError::internal("compare() is planned by plan_compare"));
    }
    let schema = Arc::clone(input.schema().inner());
    let mut extra = Vec::new();
    let mut by = Vec::new();
    for (i, field) in query.by.iter().enumerate() {
        let column = format!("__by{i}");
        let (expr, kind) = label_value(field, &schema, facts)?;
        extra.push(ExtraValue {
            column: column.clone(),
            expr,
        });
        by.push(ByLabel {
            name: field.to_string(),
            column,
            kind,
        });
    }
    if let Some(field) = query.function.field() {
        let expr = match native_column(&field.field, &schema, facts) {
            Some((column, Holds::Int | Holds::UInt | Holds::Float)) => {
                cast(column, DataType::Float64)
            }
            _ => field_expr_call(Some(&field_expr(field)), Output::Number, &schema, facts)?,
        };
        extra.push(ExtraValue {
            column: "__value".into(),
            expr,
        });
    }
    let search = plan_pipeline(&query.pipeline, input, facts, false, &extra)?;
    let value = col("__value");
    // Histograms and quantiles group by the value's power-of-two bound; the other
    // functions of a value aggregate it.
    let (histogram, aggregated) = match &query.function {
        MetricsFunction::HistogramOverTime(field)
        | MetricsFunction::QuantileOverTime { field, .. } => {
            (Some(power_of_two_bound(field, value)), None)
        }
        MetricsFunction::MinOverTime(field)
        | MetricsFunction::MaxOverTime(field)
        | MetricsFunction::AvgOverTime(field)
        | MetricsFunction::SumOverTime(field) => {
            // `span:duration` is reported in seconds, as Tempo does.
            let seconds = matches!(field.field, Field::Intrinsic(Intrinsic::Duration));
            (None, Some(if seconds { value / lit(1e9) } else { value }))
        }
        MetricsFunction::Rate
        | MetricsFunction::CountOverTime
        | MetricsFunction::Compare { .. } => (None, None),
    };
    let mut projection = vec![buckets.number().alias(BUCKET)];
    let mut group = vec![col(BUCKET)];
    for label in &by {
        projection.push(col(label.column.as_str()));
        group.push(col(label.column.as_str()));
    }
    let mut aggregates = vec![count(lit(1)).alias(COUNT)];
    // Spans without a usable value are not counted: filtered before the bound is
    // computed, so that it is computed only for the spans counted.
    let mut counted = buckets.contains_start();
    if let Some((usable, bound)) = &histogram {
        counted = counted.and(usable.clone());
        projection.push(bound.clone().alias(HISTOGRAM));
        group.push(col(HISTOGRAM));
    }
    if let Some(v) = aggregated {
        projection.push(v.alias("__v"));
        let v = || col("__v");
        aggregates.extend([
            count(v()).alias(VALUES),
            min(v()).alias(MIN),
            max(v()).alias(MAX),
            sum(v()).alias(SUM),
        ]);
    }
    let plan = LogicalPlanBuilder::from(search.plan)
        .filter(counted)?
        .project(projection)?
        .aggregate(group, aggregates)?
        .build()?;
    Ok(MetricsPlan { plan, by })
}

//! Lowers one metrics query (`{ … } | rate() by (…)`) to a DataFusion aggregate over time
//! buckets and the `by` values.
//!
//! The pipeline selects spans as in a search; each selected span whose start falls in
//! the range gets its bucket number, its `by` values (as `AnyValue` JSON) and, for
//! functions over a value, that value. DataFusion's built-in `count`, `min`, `max` and
//! `sum` then aggregate per bucket and series. Histograms and quantiles group by one
//! more key: the value rounded up to a power of two. Turning the aggregate rows into
//! series (rates, averages, quantiles, labels) is left to the caller.

use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::functions::math::expr_fn::{ceil, log2, power};
use datafusion::functions_aggregate::expr_fn::{count, max, min, sum};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, when};
use datafusion::prelude::{ident as col, lit};
use traceql_parser::Span;
use traceql_parser::ast::{
    Field, FieldExpr, FieldExprKind, FieldRef, Intrinsic, MetricsFunction, MetricsQuery,
};

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;

use crate::eval::udf::{Output, field_expr_call};
use crate::lower::{ExtraValue, plan_pipeline};
use crate::native::{Holds, native_column};
use traceql_format::codes::{kind, status};
use traceql_format::facts::Facts;
use traceql_format::schema::columns as c;

/// The bucket number column (`Int64`, 0-based).
pub const BUCKET: &str = "__bucket";
/// The histogram bucket column (`Float64`: the value's power-of-two upper bound, in
/// seconds for durations), for `histogram_over_time` and `quantile_over_time`.
pub const HISTOGRAM: &str = "__histogram";
/// Spans per group (`Int64`).
pub const COUNT: &str = "__count";
/// Numeric values per group (`Int64`).
pub const VALUES: &str = "__values";
/// Smallest value per group (`Float64`).
pub const MIN: &str = "__min";
/// Largest value per group (`Float64`).
pub const MAX: &str = "__max";
/// Sum of the values per group (`Float64`).
pub const SUM: &str = "__sum";

/// The time buckets of a metrics query: `count` buckets of `step` nanoseconds after
/// `start`. Bucket `i` holds spans starting in `(start + i·step, start + (i+1)·step]`;
/// an instant query has one bucket holding `[start, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buckets {
    /// Start of the range, unix nanoseconds.
    pub start: u64,
    /// End of the range, unix nanoseconds.
    pub end: u64,
    /// Bucket width in nanoseconds (the whole range for an instant query).
    pub step: u64,
    /// One bucket, closed at both ends.
    pub instant: bool,
}

impl Buckets {
    /// How many buckets there are.
    pub fn count(&self) -> u64 {
        if self.instant {
            1
        } else {
            self.end
                .saturating_sub(self.start)
                .div_ceil(self.step.max(1))
        }
    }

    /// The bucket of a span starting at `t`, if it is in the range.
    pub fn of(&self, t: u64) -> Option<u64> {
        if self.instant {
            return (self.start <= t && t <= self.end).then_some(0);
        }
        (self.start < t && t <= self.end).then(|| (t - self.start - 1) / self.step.max(1))
    }
}

/// How a `by` column holds its label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelKind {
    /// `AnyValue` JSON text (from the row evaluator), null for nil.
    Json,
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

/// Whether a span's start is in the range of `buckets`.
fn in_range(buckets: &Buckets) -> Expr {
    let start = col(c::START_UNIX_NANO);
    if buckets.instant {
        start.clone().gt_eq(lit(buckets.start))
    } else {
        start.clone().gt(lit(buckets.start))
    }
    .and(start.lt_eq(lit(buckets.end)))
}

/// The bucket number of a span in range.
fn bucket(buckets: &Buckets) -> Expr {
    if buckets.instant {
        lit(0i64)
    } else {
        (cast(col(c::START_UNIX_NANO), DataType::Int64) - lit(buckets.start as i64 + 1))
            / lit(buckets.step.max(1) as i64)
    }
}

/// Whether a span of a `compare()` plan is in the selection (`Boolean`).
pub const SELECTED: &str = "__selected";
/// The prefix under which a `compare()` plan carries the span-table columns.
pub const CARRIED: &str = "__span:";

/// Lowers `{ … } | compare({ filter }, n, start, end)`: every span the pipeline selects
/// in the range, with its bucket, whether it is in the selection (the filter holds and,
/// if given, it starts in `(start, end]`) and all its span-table columns (prefixed with
/// [`CARRIED`]), for counting attribute values per group.
pub fn plan_compare(
    query: &MetricsQuery,
    input: LogicalPlan,
    facts: &Facts,
    buckets: &Buckets,
) -> Result<LogicalPlan> {
    let MetricsFunction::Compare { filter, range, .. } = &query.function else {
        return Err(DataFusionError::Internal("not a compare() query".into()));
    };
    let schema = Arc::clone(input.schema().inner());
    let mut selected = match filter {
        Some(filter) => field_expr_call(Some(filter), Output::Filter, &schema, facts)?,
        None => lit(false),
    };
    if let Some((from, to)) = range {
        let start = col(c::START_UNIX_NANO);
        selected = selected
            .and(start.clone().gt(lit(*from as u64)))
            .and(start.lt_eq(lit(*to as u64)));
    }
    let mut extra = vec![ExtraValue {
        column: SELECTED.into(),
        expr: selected,
    }];
    for field in schema.fields() {
        if !crate::lower::RESULT_COLUMNS.contains(&field.name().as_str()) {
            extra.push(ExtraValue {
                column: format!("{CARRIED}{}", field.name()),
                expr: col(field.name().as_str()),
            });
        }
    }
    let search = plan_pipeline(&query.pipeline, input, facts, false, &extra)?;
    let mut projection = vec![bucket(buckets).alias(BUCKET)];
    projection.extend(search.plan.schema().columns().into_iter().map(Expr::Column));
    LogicalPlanBuilder::from(search.plan)
        .filter(in_range(buckets))?
        .project(projection)?
        .build()
}

/// `value` (of `field`) rounded up to a power of two: durations in seconds; integers
/// below 2 and fractional values give null.
fn power_of_two_bound(field: &FieldRef, value: Expr) -> Result<Expr> {
    let rounded = power(lit(2.0), ceil(log2(value.clone())));
    if is_duration(field) {
        when(value.gt(lit(0.0)), rounded / lit(1e9)).end()
    } else {
        let whole = value
            .clone()
            .gt_eq(lit(2.0))
            .and(value.clone().eq(ceil(value)));
        when(whole, rounded).end()
    }
}

/// A `by` field's value: its plain column where it has exactly one (status and kind
/// as their TraceQL words), else the row evaluator's `AnyValue` JSON.
fn label_value(field: &FieldRef, schema: &Schema, facts: &Facts) -> Result<(Expr, LabelKind)> {
    let words = |column: Expr, name: fn(i8) -> &'static str| {
        let mut case = when(column.clone().eq(lit(0i8)), lit(name(0)));
        for code in 1..=5i8 {
            case = case.when(column.clone().eq(lit(code)), lit(name(code)));
        }
        case.end()
    };
    Ok(match native_column(&field.field, schema, facts) {
        Some((column, Holds::Str)) => (column, LabelKind::Str),
        Some((column, Holds::Int)) => (column, LabelKind::Int),
        Some((column, Holds::Float)) => (column, LabelKind::Float),
        Some((column, Holds::Bool)) => (column, LabelKind::Bool),
        Some((column, Holds::Status)) => (words(column, status::name)?, LabelKind::Str),
        Some((column, Holds::Kind)) => (words(column, kind::name)?, LabelKind::Str),
        _ => (
            field_expr_call(Some(&field_expr(field)), Output::Json, schema, facts)?,
            LabelKind::Json,
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
        return Err(DataFusionError::Internal(
            "compare() is planned by plan_compare".into(),
        ));
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
            (Some(power_of_two_bound(field, value)?), None)
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
    let mut projection = vec![bucket(buckets).alias(BUCKET)];
    let mut group = vec![col(BUCKET)];
    for label in &by {
        projection.push(col(label.column.as_str()));
        group.push(col(label.column.as_str()));
    }
    let mut aggregates = vec![count(lit(1)).alias(COUNT)];
    if let Some(bound) = &histogram {
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
    let mut builder = LogicalPlanBuilder::from(search.plan)
        .filter(in_range(buckets))?
        .project(projection)?;
    if histogram.is_some() {
        // Spans without a usable value are not counted.
        builder = builder.filter(col(HISTOGRAM).is_not_null())?;
    }
    let plan = builder.aggregate(group, aggregates)?.build()?;
    Ok(MetricsPlan { plan, by })
}

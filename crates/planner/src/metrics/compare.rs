//! `compare()`: for every attribute of the spans a pipeline selects, how often each
//! value occurs in the selection and in the baseline (the other spans), per bucket.
//!
//! Series, for each attribute `a` and group `g` (`selection` or `baseline`):
//! `{__meta_type="g", a=v}` for the `n` values of `a` most frequent in `g` (ties go to
//! the value that sorts first), `{__meta_type="g_total", a=nil}` counting the spans of `g`
//! that have `a`, and, when `a` has more than `n` values in a group,
//! `{__meta_error="__too_many_values__", a=nil}` counting the spans (of both groups) whose
//! value was left out. Attributes are the span's name, status, kind and status message,
//! and its span and resource attributes holding strings, integers, floats or booleans;
//! ids, times, durations and nested-set numbers are left out.

use crate::error::PlanError;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{ident as col, lit};
use traceql_format::block::TypedColumn;
use traceql_format::block::reader::decode_batch;
use traceql_format::facts::Facts;
use traceql_format::model::Span;
use traceql_format::schema::columns as c;
use traceql_format::value::Value;
use traceql_parser::ast::{MetricsFunction, MetricsQuery};

use super::BUCKET;
use super::series::{Label, Series, ints, text};
use super::time::Buckets;
use crate::eval::udf::{Output, field_expr_call};
use crate::eval::value::Val;
use crate::lower::{ExtraValue, RESULT_COLUMNS, plan_pipeline};

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
        return Err(PlanError::internal("not a compare() query"));
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
        if !RESULT_COLUMNS.contains(&field.name().as_str()) {
            extra.push(ExtraValue {
                column: format!("{CARRIED}{}", field.name()),
                expr: col(field.name().as_str()),
            });
        }
    }
    let search = plan_pipeline(&query.pipeline, input, facts, false, &extra)?;
    let mut projection = vec![buckets.number().alias(BUCKET)];
    projection.extend(search.plan.schema().columns().into_iter().map(Expr::Column));
    LogicalPlanBuilder::from(search.plan)
        .filter(buckets.contains_start())?
        .project(projection)?
        .build()
}

const GROUPS: [&str; 2] = ["baseline", "selection"];

/// The attributes of `span` compared: `(label key, value as results show it)`.
fn attributes(span: &Span) -> Vec<(String, Value)> {
    let mut values = vec![
        ("name".to_string(), Val::Str(span.name.as_str().into())),
        ("status".to_string(), Val::Status(span.status_code)),
        ("kind".to_string(), Val::Kind(span.kind)),
    ];
    if !span.status_message.is_empty() {
        values.push((
            "statusMessage".to_string(),
            Val::Str(span.status_message.as_str().into()),
        ));
    }
    let scoped = [
        ("span", &span.attributes),
        ("resource", &span.resource.attributes),
    ];
    for (scope, list) in scoped {
        for kv in list.iter() {
            let value = match &kv.value {
                Value::Str(s) => Val::Str(s.as_str().into()),
                Value::Int(i) => Val::Int(*i),
                Value::Float(f) => Val::Float(*f),
                Value::Bool(b) => Val::Bool(*b),
                _ => continue,
            };
            values.push((format!("{scope}.{}", kv.key), value));
        }
    }
    values
        .into_iter()
        .map(|(key, value)| (key, value.shown()))
        .collect()
}

/// The batch with the carried span-table columns under their own names.
fn uncarried(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().strip_prefix(CARRIED).unwrap_or(f.name());
            f.as_ref().clone().with_name(name)
        })
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        batch.columns().to_vec(),
    )?)
}

/// Counts per bucket.
type Counts = Vec<f64>;

/// The series of a `compare()` with `top_n` values per attribute, from the rows of its
/// plan over `buckets` buckets; `typed` are the span table's typed columns.
pub fn from_batches(
    batches: &[RecordBatch],
    typed: &[TypedColumn],
    top_n: usize,
    buckets: u64,
) -> Result<Vec<Series>> {
    let n = buckets as usize;
    // (group, key) → value → counts; (group, key) → totals.
    let mut values: BTreeMap<(usize, String), HashMap<Value, Counts>> = BTreeMap::new();
    let mut totals: BTreeMap<(usize, String), Counts> = BTreeMap::new();
    for batch in batches {
        let batch = uncarried(batch)?;
        let bucket = ints(&batch, BUCKET)?;
        let selected = batch
            .column_by_name(SELECTED)
            .ok_or_else(|| PlanError::internal("compare plan lacks groups"))?
            .as_boolean()
            .clone();
        let mut spans = Vec::with_capacity(batch.num_rows());
        decode_batch(&batch, typed, &mut spans).map_err(|e| PlanError::data(e.to_string()))?;
        for (row, span) in spans.iter().enumerate() {
            let Some(i) = bucket[row]
                .and_then(|b| usize::try_from(b).ok())
                .filter(|i| *i < n)
            else {
                continue;
            };
            let group = usize::from(selected.is_valid(row) && selected.value(row));
            for (key, value) in attributes(span) {
                totals
                    .entry((group, key.clone()))
                    .or_insert_with(|| vec![0.0; n])[i] += 1.0;
                values
                    .entry((group, key))
                    .or_default()
                    .entry(value)
                    .or_insert_with(|| vec![0.0; n])[i] += 1.0;
            }
        }
    }
    let meta = |group: &str| ("__meta_type".to_string(), text(group));
    let mut out = Vec::new();
    let mut left_out: BTreeMap<String, Counts> = BTreeMap::new();
    for ((group, key), by_value) in values {
        let mut ranked: Vec<(Value, Counts)> = by_value.into_iter().collect();
        ranked.sort_by(|(a_value, a), (b_value, b)| {
            let (a_sum, b_sum): (f64, f64) = (a.iter().sum(), b.iter().sum());
            b_sum
                .total_cmp(&a_sum)
                .then_with(|| a_value.total_cmp(b_value))
        });
        if ranked.len() > top_n {
            let rest = left_out.entry(key.clone()).or_insert_with(|| vec![0.0; n]);
            for (_, counts) in &ranked[top_n..] {
                for (r, c) in rest.iter_mut().zip(counts) {
                    *r += c;
                }
            }
        }
        for (value, counts) in ranked.into_iter().take(top_n) {
            let labels: Vec<Label> = vec![meta(GROUPS[group]), (key.clone(), Some(value))];
            out.push(Series {
                labels,
                values: counts,
            });
        }
    }
    for ((group, key), counts) in totals {
        out.push(Series {
            labels: vec![meta(&format!("{}_total", GROUPS[group])), (key, None)],
            values: counts,
        });
    }
    for (key, counts) in left_out {
        out.push(Series {
            labels: vec![
                ("__meta_error".to_string(), text("__too_many_values__")),
                (key, None),
            ],
            values: counts,
        });
    }
    Ok(out)
}

//! Time series: built from the aggregate rows of a metrics plan, then transformed by
//! second stages (`topk`, `bottomk`, comparison filters) and arithmetic.
//!
//! A series holds one value per bucket; `NaN` marks a bucket without a value, and such
//! points are not reported.

use crate::error::PlanError;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use super::aggregate::{LabelKind, MetricsPlan};
use super::{BUCKET, COUNT, HISTOGRAM, MAX, MIN, SUM, VALUES};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::error::Result;
use traceql_format::entries::Values;
use traceql_format::value::Value;
use traceql_parser::ast::{ArithmeticOp, ComparisonOp, MetricsFunction};

/// A label: a key and its value (`None` for nil).
pub type Label = (String, Option<Value>);

/// A string label value.
pub fn text(s: &str) -> Option<Value> {
    Some(Value::Str(s.to_string()))
}

/// Orders labels by key, then by value (see [`Value::total_cmp`]), nil last.
fn label_order(a: &Label, b: &Label) -> Ordering {
    a.0.cmp(&b.0).then_with(|| match (&a.1, &b.1) {
        (Some(x), Some(y)) => x.total_cmp(y),
        (x, y) => x.is_none().cmp(&y.is_none()),
    })
}

/// Orders label lists label by label.
pub fn labels_order(a: &[Label], b: &[Label]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| label_order(x, y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// One series.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its labels, in `by` order (then `p` or `__bucket`).
    pub labels: Vec<Label>,
    /// One value per bucket; `NaN` where there is none.
    pub values: Vec<f64>,
}

impl Series {
    /// Whether the series has no labels of its own (only `__name__`), so that it
    /// pairs with every series in arithmetic.
    fn unlabelled(&self) -> bool {
        self.labels.iter().all(|(k, _)| k == "__name__")
    }
}

/// The result of a metrics expression: series, or a scalar constant.
#[derive(Clone, Debug, PartialEq)]
pub enum Metrics {
    /// Series over the buckets.
    Series(Vec<Series>),
    /// A constant.
    Scalar(f64),
}

/// Per series (keyed by its labels, without the histogram bound): per bucket, per
/// bound, a count.
type Histograms = HashMap<Vec<Label>, Vec<BTreeMap<u64, u64>>>;

/// The entries of `map`, ordered by their labels.
fn by_labels<T>(map: HashMap<Vec<Label>, T>) -> Vec<(Vec<Label>, T)> {
    let mut entries: Vec<_> = map.into_iter().collect();
    entries.sort_by(|a, b| labels_order(&a.0, &b.0));
    entries
}

/// Column `name` of `batch`, cast to `to`.
fn column_as(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| PlanError::internal(format!("metrics plan lacks column {name}")))?;
    Ok(cast(column, to)?)
}

/// Reads a column as `Int64` values.
pub(super) fn ints(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    Ok(column_as(batch, name, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .iter()
        .collect())
}

/// Reads a column as `Float64` values.
fn floats(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>> {
    Ok(column_as(batch, name, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .iter()
        .collect())
}

/// The values of a `by` column holding `kind` (`None` for nil).
fn label_values(batch: &RecordBatch, name: &str, kind: LabelKind) -> Result<Vec<Option<Value>>> {
    let typed = |to: DataType| column_as(batch, name, &to);
    Ok(match kind {
        LabelKind::Value => {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| PlanError::internal(format!("metrics plan lacks column {name}")))?;
            let values =
                Values::new(column.as_ref()).map_err(|e| PlanError::data(e.to_string()))?;
            (0..column.len())
                .map(|row| values.get(row))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| PlanError::data(e.to_string()))?
        }
        LabelKind::Str => typed(DataType::Utf8)?
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|s| Value::Str(s.to_string())))
            .collect(),
        LabelKind::Int => typed(DataType::Int64)?
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(Value::Int))
            .collect(),
        LabelKind::Float => typed(DataType::Float64)?
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(Value::Float))
            .collect(),
        LabelKind::Bool => typed(DataType::Boolean)?
            .as_boolean()
            .iter()
            .map(|v| v.map(Value::Bool))
            .collect(),
    })
}

/// The `by` labels of a row: nil values are left out; if all are nil, the first key
/// with a nil value. Without `by`, `__name__` is the function's name.
fn labels(plan: &MetricsPlan, by: &[Vec<Option<Value>>], row: usize, function: &str) -> Vec<Label> {
    if plan.by.is_empty() {
        return vec![("__name__".into(), text(function))];
    }
    let present: Vec<Label> = plan
        .by
        .iter()
        .zip(by)
        .filter_map(|(label, values)| {
            let value = values[row].clone()?;
            Some((label.name.clone(), Some(value)))
        })
        .collect();
    if present.is_empty() {
        vec![(plan.by[0].name.clone(), None)]
    } else {
        present
    }
}

/// `labels` without `__name__`: histogram and quantile series are told apart by
/// their `__bucket` or `p` label, and Tempo gives them no name.
fn without_name(labels: &[Label]) -> Vec<Label> {
    labels
        .iter()
        .filter(|(k, _)| k != "__name__")
        .cloned()
        .collect()
}

/// Series from the aggregate rows of `plan` for `function` over `buckets` buckets of
/// `step_seconds` each.
pub fn from_batches(
    plan: &MetricsPlan,
    function: &MetricsFunction,
    batches: &[RecordBatch],
    buckets: u64,
    step_seconds: f64,
) -> Result<Vec<Series>> {
    let n = buckets as usize;
    let name = function.name();
    let mut plain: HashMap<Vec<Label>, Vec<f64>> = HashMap::new();
    let mut histograms: Histograms = HashMap::new();
    for batch in batches {
        let bucket = ints(batch, BUCKET)?;
        let by: Vec<Vec<Option<Value>>> = plan
            .by
            .iter()
            .map(|label| label_values(batch, &label.column, label.kind))
            .collect::<Result<_>>()?;
        let count = ints(batch, COUNT)?;
        let stats = match function {
            MetricsFunction::MinOverTime(_)
            | MetricsFunction::MaxOverTime(_)
            | MetricsFunction::AvgOverTime(_)
            | MetricsFunction::SumOverTime(_) => Some((
                ints(batch, VALUES)?,
                floats(batch, MIN)?,
                floats(batch, MAX)?,
                floats(batch, SUM)?,
            )),
            _ => None,
        };
        let bound = match function {
            MetricsFunction::HistogramOverTime(_) | MetricsFunction::QuantileOverTime { .. } => {
                Some(floats(batch, HISTOGRAM)?)
            }
            _ => None,
        };
        for row in 0..batch.num_rows() {
            let Some(i) = bucket[row]
                .and_then(|b| usize::try_from(b).ok())
                .filter(|b| *b < n)
            else {
                continue;
            };
            let labels = labels(plan, &by, row, name);
            let spans = count[row].unwrap_or(0) as f64;
            if let Some(bounds) = &bound {
                let Some(b) = bounds[row] else { continue };
                histograms
                    .entry(labels)
                    .or_insert_with(|| vec![BTreeMap::new(); n])[i]
                    .insert(b.to_bits(), spans as u64);
                continue;
            }
            let empty = if matches!(
                function,
                MetricsFunction::Rate | MetricsFunction::CountOverTime
            ) {
                0.0
            } else {
                f64::NAN
            };
            let series = plain.entry(labels).or_insert_with(|| vec![empty; n]);
            series[i] = match (function, &stats) {
                (MetricsFunction::Rate, _) => spans / step_seconds,
                (MetricsFunction::CountOverTime, _) => spans,
                (_, Some((values, min, max, sum))) => {
                    if values[row].unwrap_or(0) == 0 {
                        f64::NAN
                    } else {
                        match function {
                            MetricsFunction::MinOverTime(_) => min[row].unwrap_or(f64::NAN),
                            MetricsFunction::MaxOverTime(_) => max[row].unwrap_or(f64::NAN),
                            MetricsFunction::SumOverTime(_) => sum[row].unwrap_or(f64::NAN),
                            _ => sum[row].unwrap_or(f64::NAN) / values[row].unwrap_or(1) as f64,
                        }
                    }
                }
                _ => f64::NAN,
            };
        }
    }
    let mut out: Vec<Series> = by_labels(plain)
        .into_iter()
        .map(|(labels, values)| Series { labels, values })
        .collect();
    match function {
        MetricsFunction::HistogramOverTime(_) => {
            for (labels, per_bucket) in by_labels(histograms) {
                let mut by_bound: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
                for (i, counts) in per_bucket.iter().enumerate() {
                    for (bound, c) in counts {
                        by_bound.entry(*bound).or_insert_with(|| vec![0.0; n])[i] = *c as f64;
                    }
                }
                let mut bounds: Vec<(f64, Vec<f64>)> = by_bound
                    .into_iter()
                    .map(|(b, v)| (f64::from_bits(b), v))
                    .collect();
                bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
                for (bound, values) in bounds {
                    let mut labels = without_name(&labels);
                    labels.push(("__bucket".into(), Some(Value::Float(bound))));
                    out.push(Series { labels, values });
                }
            }
        }
        MetricsFunction::QuantileOverTime { quantiles, .. } => {
            for (labels, per_bucket) in by_labels(histograms) {
                for q in quantiles {
                    let values = per_bucket
                        .iter()
                        .map(|counts| {
                            let mut buckets: Vec<(f64, u64)> = counts
                                .iter()
                                .map(|(b, c)| (f64::from_bits(*b), *c))
                                .collect();
                            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                            // Tempo reports 0 for a bucket without spans.
                            if buckets.is_empty() {
                                0.0
                            } else {
                                log2_quantile(*q, &buckets)
                            }
                        })
                        .collect();
                    let mut labels = without_name(&labels);
                    labels.push(("p".into(), Some(Value::Float(*q))));
                    out.push(Series { labels, values });
                }
            }
        }
        _ => {}
    }
    Ok(out)
}

/// The `q` quantile of values counted in power-of-two buckets (`(bound/2, bound]`,
/// ascending by bound): the bucket holding the ⌈q·n⌉-th value, interpolated
/// exponentially inside it. `NaN` without values.
pub fn log2_quantile(q: f64, buckets: &[(f64, u64)]) -> f64 {
    let total: u64 = buckets.iter().map(|(_, c)| c).sum();
    if total == 0 {
        return f64::NAN;
    }
    let mut rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    for (bound, count) in buckets {
        if rank > *count {
            rank -= count;
            continue;
        }
        let lower = bound / 2.0;
        return lower * 2f64.powf(rank as f64 / *count as f64);
    }
    f64::NAN
}

/// Keeps, at each bucket, the `k` series with the largest (`top`) or smallest values;
/// ties go to the series whose labels sort first. Series left empty are dropped.
pub fn top_k(series: Vec<Series>, k: usize, top: bool) -> Vec<Series> {
    let mut series = series;
    series.sort_by(|a, b| labels_order(&a.labels, &b.labels));
    let n = series.first().map_or(0, |s| s.values.len());
    let mut keep = vec![vec![false; n]; series.len()];
    #[allow(clippy::needless_range_loop)] // `i` indexes every series, not `keep`
    for i in 0..n {
        let mut ranked: Vec<usize> = (0..series.len())
            .filter(|s| !series[*s].values[i].is_nan())
            .collect();
        ranked.sort_by(|a, b| {
            let (x, y) = (series[*a].values[i], series[*b].values[i]);
            let order = if top {
                y.total_cmp(&x)
            } else {
                x.total_cmp(&y)
            };
            order.then(a.cmp(b))
        });
        for s in ranked.into_iter().take(k) {
            keep[s][i] = true;
        }
    }
    series
        .into_iter()
        .zip(keep)
        .map(|(mut s, keep)| {
            for (v, k) in s.values.iter_mut().zip(keep) {
                if !k {
                    *v = f64::NAN;
                }
            }
            s
        })
        .filter(|s| s.values.iter().any(|v| !v.is_nan()))
        .collect()
}

/// Keeps the points that satisfy `op threshold`; series left empty are dropped.
pub fn filter(series: Vec<Series>, op: ComparisonOp, threshold: f64) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            for v in &mut s.values {
                let keep = match op {
                    ComparisonOp::Eq => *v == threshold,
                    ComparisonOp::Neq => *v != threshold,
                    ComparisonOp::Gt => *v > threshold,
                    ComparisonOp::Gte => *v >= threshold,
                    ComparisonOp::Lt => *v < threshold,
                    ComparisonOp::Lte => *v <= threshold,
                };
                if !keep {
                    *v = f64::NAN;
                }
            }
            s
        })
        .filter(|s| s.values.iter().any(|v| !v.is_nan()))
        .collect()
}

fn apply(op: ArithmeticOp, a: f64, b: f64) -> f64 {
    match op {
        ArithmeticOp::Add => a + b,
        ArithmeticOp::Sub => a - b,
        ArithmeticOp::Mul => a * b,
        ArithmeticOp::Div if b == 0.0 => f64::NAN,
        ArithmeticOp::Div => a / b,
        ArithmeticOp::Mod if b == 0.0 => f64::NAN,
        ArithmeticOp::Mod => a % b,
        ArithmeticOp::Pow => a.powf(b),
    }
}

/// `lhs op rhs`: series with identical labels pair up; a side whose only series has
/// no labels pairs with every series of the other side; scalars apply to every point.
/// A missing point or a division by zero gives `NaN`.
pub fn arithmetic(op: ArithmeticOp, lhs: Metrics, rhs: Metrics) -> Metrics {
    let pointwise = |series: Vec<Series>, f: &dyn Fn(f64) -> f64| {
        series
            .into_iter()
            .map(|mut s| {
                s.values.iter_mut().for_each(|v| *v = f(*v));
                s
            })
            .collect()
    };
    match (lhs, rhs) {
        (Metrics::Scalar(a), Metrics::Scalar(b)) => Metrics::Scalar(apply(op, a, b)),
        (Metrics::Series(s), Metrics::Scalar(b)) => {
            Metrics::Series(pointwise(s, &|a| apply(op, a, b)))
        }
        (Metrics::Scalar(a), Metrics::Series(s)) => {
            Metrics::Series(pointwise(s, &|b| apply(op, a, b)))
        }
        (Metrics::Series(l), Metrics::Series(r)) => {
            let combine = |a: &Series, b: &Series, labels: Vec<Label>| Series {
                labels,
                values: a
                    .values
                    .iter()
                    .zip(&b.values)
                    .map(|(x, y)| apply(op, *x, *y))
                    .collect(),
            };
            let single = |s: &[Series]| (s.len() == 1 && s[0].unlabelled()).then(|| s[0].clone());
            let out = match (single(&l), single(&r)) {
                (Some(a), Some(b)) => vec![combine(&a, &b, Vec::new())],
                (Some(a), None) => r.iter().map(|b| combine(&a, b, b.labels.clone())).collect(),
                (None, Some(b)) => l.iter().map(|a| combine(a, &b, a.labels.clone())).collect(),
                (None, None) => l
                    .iter()
                    .filter_map(|a| {
                        let b = r.iter().find(|b| b.labels == a.labels)?;
                        Some(combine(a, b, a.labels.clone()))
                    })
                    .collect(),
            };
            Metrics::Series(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, values: &[f64]) -> Series {
        Series {
            labels: vec![("svc".into(), text(name))],
            values: values.to_vec(),
        }
    }

    #[test]
    fn quantiles_interpolate_inside_power_of_two_buckets() {
        // Four values in (1, 2], four in (2, 4].
        let buckets = [(2.0, 4), (4.0, 4)];
        assert_eq!(log2_quantile(0.5, &buckets), 2.0);
        assert_eq!(log2_quantile(1.0, &buckets), 4.0);
        assert!((log2_quantile(0.75, &buckets) - 2.0 * 2f64.sqrt()).abs() < 1e-12);
        assert!(log2_quantile(0.5, &[]).is_nan());
    }

    #[test]
    fn top_k_keeps_the_largest_per_bucket() {
        let out = top_k(
            vec![
                series("a", &[1.0, 5.0]),
                series("b", &[3.0, f64::NAN]),
                series("c", &[2.0, 1.0]),
            ],
            1,
            true,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].values[1], 5.0);
        assert!(out[0].values[0].is_nan());
        assert_eq!(out[1].values[0], 3.0);
        let bottom = top_k(vec![series("a", &[1.0]), series("b", &[1.0])], 1, false);
        assert_eq!(bottom.len(), 1, "ties go to the first labels");
        assert_eq!(bottom[0].labels[0].1, text("a"));
    }

    #[test]
    fn arithmetic_pairs_series_by_labels() {
        let errors = Metrics::Series(vec![series("a", &[1.0, 0.0]), series("b", &[2.0, 2.0])]);
        let all = Metrics::Series(vec![series("a", &[4.0, 0.0]), series("c", &[1.0, 1.0])]);
        let Metrics::Series(ratio) = arithmetic(ArithmeticOp::Div, errors, all) else {
            panic!("series")
        };
        assert_eq!(ratio.len(), 1);
        assert_eq!(ratio[0].values[0], 0.25);
        assert!(ratio[0].values[1].is_nan(), "0/0 is NaN");
        let total = Metrics::Series(vec![Series {
            labels: vec![("__name__".into(), text("rate"))],
            values: vec![10.0, 10.0],
        }]);
        let per = Metrics::Series(vec![series("a", &[1.0, 2.0]), series("b", &[3.0, 4.0])]);
        let Metrics::Series(share) = arithmetic(ArithmeticOp::Div, per, total) else {
            panic!("series")
        };
        assert_eq!(share.len(), 2);
        assert_eq!(share[1].values, vec![0.3, 0.4]);
        assert_eq!(
            arithmetic(
                ArithmeticOp::Mul,
                Metrics::Scalar(2.0),
                Metrics::Scalar(3.0)
            ),
            Metrics::Scalar(6.0)
        );
    }

    #[test]
    fn filters_drop_empty_series() {
        let out = filter(
            vec![series("a", &[1.0, 5.0]), series("b", &[0.5, 0.2])],
            ComparisonOp::Gt,
            2.0,
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].values[0].is_nan());
        assert_eq!(out[0].values[1], 5.0);
    }
}

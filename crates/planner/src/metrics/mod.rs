//! TraceQL metrics as one layer: the time model, each function's plan, and the
//! series made from what the plan returns.
//!
//! - [`time`]: Tempo's time model ([`Buckets`], the default step, range alignment,
//!   instant queries, sample timestamps).
//! - [`aggregate`]: the plan of the aggregating functions (`rate`, `…_over_time`,
//!   `quantile_over_time`, `histogram_over_time`).
//! - [`series`]: series from the aggregate rows (rates, averages, quantiles,
//!   histograms, labels), second stages (`topk`, `bottomk`, filters) and arithmetic.
//! - [`compare`]: `compare()`, its plan and its series.
//!
//! The engine (`traceql-exec`) selects blocks, runs the plans and combines the parts of
//! a query.

pub mod aggregate;
pub mod compare;
pub mod series;
pub mod time;

pub use aggregate::{ByLabel, LabelKind, MetricsPlan, plan_metrics};
pub use compare::plan_compare;
pub use series::{Metrics, Series};
pub use time::Buckets;

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

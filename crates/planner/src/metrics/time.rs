//! Tempo's time model for metrics: buckets, the default step, range alignment and
//! instant queries.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, cast};
use datafusion::prelude::{ident as col, lit};
use traceql_format::schema::columns as c;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

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

    /// The buckets of a range query from `start` to `end` (unix nanoseconds) with
    /// `step` (default: [`default_step`]): start rounded down to a multiple of the step,
    /// end rounded up, then start moved one step earlier, as Tempo's query frontend
    /// does. A query whose range is exactly one step is instant.
    pub fn for_range(start: u64, end: u64, step: Option<u64>) -> Buckets {
        let step = step
            .unwrap_or_else(|| default_step(end.saturating_sub(start)))
            .max(1);
        if end.saturating_sub(start) == step {
            return Buckets::for_instant(start, end);
        }
        let aligned_start = (start / step * step).saturating_sub(step);
        let aligned_end = end.div_ceil(step).saturating_mul(step);
        Buckets {
            start: aligned_start,
            end: aligned_end,
            step,
            instant: false,
        }
    }

    /// The single bucket `[start, end]` of an instant query.
    pub fn for_instant(start: u64, end: u64) -> Buckets {
        Buckets {
            start,
            end,
            step: end.saturating_sub(start).max(1),
            instant: true,
        }
    }

    /// The sample timestamp of bucket `i`, in milliseconds: the bucket's end.
    pub fn timestamp_ms(&self, i: u64) -> u64 {
        if self.instant {
            self.end / MS
        } else {
            (self.start + (i + 1) * self.step) / MS
        }
    }

    /// Whether a span's start is in the range (a `Boolean` expression over the span
    /// table).
    pub fn contains_start(&self) -> Expr {
        let start = col(c::START_UNIX_NANO);
        if self.instant {
            start.clone().gt_eq(lit(self.start))
        } else {
            start.clone().gt(lit(self.start))
        }
        .and(start.lt_eq(lit(self.end)))
    }

    /// The bucket number of a span in range (an `Int64` expression, 0-based).
    pub fn number(&self) -> Expr {
        if self.instant {
            lit(0i64)
        } else {
            (cast(col(c::START_UNIX_NANO), DataType::Int64) - lit(self.start as i64 + 1))
                / lit(self.step.max(1) as i64)
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

/// The step Tempo picks for a range of `range` nanoseconds: about 240 points. Ranges
/// under a minute use multiples of 50 ms; longer ones the largest of 1h, 5m, 1m, 15s, 5s
/// and 1s not above range/240, rounded down to a multiple of it; never under 1 s.
pub fn default_step(range: u64) -> u64 {
    let raw = range / 240;
    if range < 60 * SECOND {
        return (raw / (50 * MS) * (50 * MS)).max(50 * MS);
    }
    let unit = [3600, 300, 60, 15, 5, 1]
        .into_iter()
        .map(|s| s * SECOND)
        .find(|u| *u <= raw)
        .unwrap_or(SECOND);
    (raw / unit * unit).max(SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_steps_follow_tempo() {
        assert_eq!(default_step(3600 * SECOND), 15 * SECOND);
        assert_eq!(default_step(24 * 3600 * SECOND), 300 * SECOND);
        assert_eq!(default_step(10 * SECOND), 50 * MS);
        assert_eq!(default_step(30 * SECOND), 100 * MS);
        assert_eq!(default_step(2 * 60 * SECOND), SECOND);
        assert_eq!(default_step(7 * 24 * 3600 * SECOND), 2400 * SECOND);
    }

    #[test]
    fn ranges_are_aligned_and_right_closed() {
        let b = Buckets::for_range(125 * SECOND, 185 * SECOND, Some(30 * SECOND));
        assert_eq!(b.start, 90 * SECOND);
        assert_eq!(b.end, 210 * SECOND);
        assert_eq!(b.count(), 4);
        assert_eq!(b.of(90 * SECOND), None);
        assert_eq!(b.of(90 * SECOND + 1), Some(0));
        assert_eq!(b.of(120 * SECOND), Some(0));
        assert_eq!(b.of(120 * SECOND + 1), Some(1));
        assert_eq!(b.of(210 * SECOND), Some(3));
        assert_eq!(b.of(210 * SECOND + 1), None);
        assert_eq!(b.timestamp_ms(0), 120_000);
    }

    #[test]
    fn one_step_is_an_instant_query() {
        let b = Buckets::for_range(10 * SECOND, 70 * SECOND, Some(60 * SECOND));
        assert!(b.instant);
        assert_eq!(b.count(), 1);
        assert_eq!(b.of(10 * SECOND), Some(0));
        assert_eq!(b.of(70 * SECOND), Some(0));
        assert_eq!(b.timestamp_ms(0), 70_000);
    }
}

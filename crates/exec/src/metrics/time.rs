//! Tempo's time model for metrics: the default step, range alignment and instant
//! queries.

use traceql_planner::metrics::Buckets;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;

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

/// The buckets of a range query from `start` to `end` (unix nanoseconds) with `step`
/// (default: [`default_step`]): start rounded down to a multiple of the step, end
/// rounded up, then start moved one step earlier, as Tempo's query frontend does. A
/// query whose range is exactly one step is instant.
pub fn range_buckets(start: u64, end: u64, step: Option<u64>) -> Buckets {
    let step = step
        .unwrap_or_else(|| default_step(end.saturating_sub(start)))
        .max(1);
    if end.saturating_sub(start) == step {
        return instant_buckets(start, end);
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
pub fn instant_buckets(start: u64, end: u64) -> Buckets {
    Buckets {
        start,
        end,
        step: end.saturating_sub(start).max(1),
        instant: true,
    }
}

/// The sample timestamp of bucket `i`, in milliseconds: the bucket's end.
pub fn timestamp_ms(buckets: &Buckets, i: u64) -> u64 {
    if buckets.instant {
        buckets.end / MS
    } else {
        (buckets.start + (i + 1) * buckets.step) / MS
    }
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
        let b = range_buckets(125 * SECOND, 185 * SECOND, Some(30 * SECOND));
        assert_eq!(b.start, 90 * SECOND);
        assert_eq!(b.end, 210 * SECOND);
        assert_eq!(b.count(), 4);
        assert_eq!(b.of(90 * SECOND), None);
        assert_eq!(b.of(90 * SECOND + 1), Some(0));
        assert_eq!(b.of(120 * SECOND), Some(0));
        assert_eq!(b.of(120 * SECOND + 1), Some(1));
        assert_eq!(b.of(210 * SECOND), Some(3));
        assert_eq!(b.of(210 * SECOND + 1), None);
        assert_eq!(timestamp_ms(&b, 0), 120_000);
    }

    #[test]
    fn one_step_is_an_instant_query() {
        let b = range_buckets(10 * SECOND, 70 * SECOND, Some(60 * SECOND));
        assert!(b.instant);
        assert_eq!(b.count(), 1);
        assert_eq!(b.of(10 * SECOND), Some(0));
        assert_eq!(b.of(70 * SECOND), Some(0));
        assert_eq!(timestamp_ms(&b, 0), 70_000);
    }
}

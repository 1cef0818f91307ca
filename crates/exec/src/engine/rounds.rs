//! The rounds of a search that wants the first `limit` traces in some order: each round
//! searches a [`Window`] of traces that rank before every trace of later windows, so the
//! search can stop after the round in which it has `limit` traces and still be exact,
//! while a small limit reads little.

use traceql_format::block::meta::duration_bucket_bounds;
use traceql_format::facts::Facts;

use super::Window;
use crate::source::Block;

/// The order in which a search ranks traces; it returns the first `limit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Latest trace start first (Tempo's order).
    #[default]
    Newest,
    /// Earliest trace start first.
    Oldest,
    /// Longest trace duration first.
    Slowest,
}

impl Order {
    /// Every order.
    pub const ALL: [Order; 3] = [Order::Newest, Order::Oldest, Order::Slowest];

    /// Its name on the command line: `newest`, `oldest`, `slowest`.
    pub fn name(self) -> &'static str {
        match self {
            Order::Newest => "newest",
            Order::Oldest => "oldest",
            Order::Slowest => "slowest",
        }
    }

    /// The order named `name` (see [`Order::name`]).
    pub fn from_name(name: &str) -> Option<Order> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// A trace's rank from its start and duration: lower ranks come first.
    pub(crate) fn rank(self, start: u64, duration: u64) -> u64 {
        match self {
            Order::Newest => u64::MAX - start,
            Order::Oldest => start,
            Order::Slowest => u64::MAX - duration,
        }
    }
}

/// How much wider the next window is than all windows so far: wide enough to hold
/// twice the traces still missing at the rate of matches seen (`found` of `searched`),
/// at least twice and at most 64 times as wide; 32 times when nothing was found yet.
fn growth(found: usize, searched: f64, limit: usize) -> f64 {
    if found == 0 {
        return 32.0;
    }
    let rate = found as f64 / searched.max(1.0);
    let missing = limit.saturating_sub(found).max(1) as f64;
    (2.0 * missing / rate / searched.max(1.0)).clamp(2.0, 64.0)
}

/// A window that would bring what is searched past this share of everything takes all
/// the rest: a round has a fixed cost (planning, opening blocks) worth a sizable share
/// of a full scan, so a last round over a small remainder costs more than it saves.
const REST_SHARE: f64 = 0.5;

/// The windows of a search in `order`.
pub(crate) enum Rounds {
    /// Windows of trace starts, newest or oldest first.
    Time(TimeWindows),
    /// Windows of trace durations, longest first.
    Duration(DurationWindows),
    /// One window of everything (`true` once it has been given).
    Once(bool),
}

impl Rounds {
    /// The windows over `blocks` for the first `limit` traces in `order`.
    pub(crate) fn new(order: Order, blocks: &[&(Block, Facts)], limit: usize) -> Rounds {
        if order != Order::Slowest && inseparable(blocks) {
            return Rounds::Once(false);
        }
        match order {
            Order::Newest => Rounds::Time(TimeWindows::new(blocks, limit, true)),
            Order::Oldest => Rounds::Time(TimeWindows::new(blocks, limit, false)),
            Order::Slowest => Rounds::Duration(DurationWindows::new(blocks, limit)),
        }
    }

    /// Windows of trace starts in `order` (newest or oldest first) for a search that
    /// hands out its traces window by window, each aimed at about `per_window` matching
    /// traces (the first holds `per_window` traces of `blocks`; the next are sized from
    /// the rate of matches found so far, passed to [`Rounds::next`] as all matches so
    /// far): `None` where that cannot be done (slowest first, blocks out of trace order
    /// that share an instant) or would take one window.
    pub(crate) fn streaming(
        order: Order,
        blocks: &[&(Block, Facts)],
        per_window: usize,
    ) -> Option<Rounds> {
        let traces: u64 = blocks.iter().map(|(b, _)| b.meta().traces).sum();
        if order == Order::Slowest || inseparable(blocks) || traces <= per_window as u64 {
            return None;
        }
        let mut windows = TimeWindows::new(blocks, per_window / 4, order == Order::Newest);
        windows.fixed = true;
        windows.limit = per_window;
        Some(Rounds::Time(windows))
    }

    /// The next window, given the traces found so far; `None` when everything has
    /// been searched.
    pub(crate) fn next(&mut self, found: usize) -> Option<Window> {
        match self {
            Rounds::Time(w) => w.next(found),
            Rounds::Duration(w) => w.next(found),
            Rounds::Once(given) => (!std::mem::replace(given, true)).then_some(Window::ALL),
        }
    }
}

/// Whether windows of trace starts cannot spare reading any of `blocks`: none is in
/// trace order (Grafana Tempo's blocks, so a window reads a block whole) and their time
/// ranges share an instant (so every window touches them all).
fn inseparable(blocks: &[&(Block, Facts)]) -> bool {
    let latest_start = blocks.iter().map(|(b, _)| b.meta().start_unix_nano).max();
    let earliest_end = blocks.iter().map(|(b, _)| b.meta().end_unix_nano).min();
    blocks.iter().all(|(b, _)| !b.layout().trace_order)
        && matches!((latest_start, earliest_end), (Some(s), Some(e)) if s <= e)
}

/// Windows of trace starts from one end of the blocks' time range to the other, the
/// last unbounded. The first is sized to hold about `limit` × 4 traces at the blocks'
/// average rate, each next one by [`growth`].
pub(crate) struct TimeWindows {
    newest: u64,
    oldest: u64,
    limit: usize,
    newest_first: bool,
    /// How far the windows so far reach (the start of the next window).
    edge: Option<u64>,
    width: u64,
    done: bool,
    /// Windows of a streamed search, each aimed at about `limit` matching traces, not
    /// at the first `limit` traces all told.
    fixed: bool,
    /// The width of the first window.
    first_width: u64,
}

impl TimeWindows {
    fn new(blocks: &[&(Block, Facts)], limit: usize, newest_first: bool) -> TimeWindows {
        let newest = blocks
            .iter()
            .map(|(b, _)| b.meta().end_unix_nano)
            .max()
            .unwrap_or(0);
        let oldest = blocks
            .iter()
            .map(|(b, _)| b.meta().start_unix_nano)
            .min()
            .unwrap_or(0);
        let traces: u64 = blocks.iter().map(|(b, _)| b.meta().traces).sum();
        let span = newest.saturating_sub(oldest).max(1);
        let single = traces == 0 || limit as u64 >= traces / 4;
        let width = if single {
            u64::MAX
        } else {
            (limit.max(1) as f64 * 4.0 * span as f64 / traces as f64).max(1.0) as u64
        };
        TimeWindows {
            newest,
            oldest,
            limit,
            newest_first,
            edge: None,
            width,
            done: blocks.is_empty(),
            fixed: false,
            first_width: width,
        }
    }

    /// The width of the next window of a streamed search, `found` traces having matched
    /// in the first `searched` nanoseconds of `whole`: wide enough for about `limit`
    /// matches at the rate seen (never narrower than the first window; sixteen times the
    /// windows so far while nothing matched), and all the rest once the rest holds at
    /// most twice that many.
    fn stream_width(&self, found: usize, searched: f64, whole: f64) -> u64 {
        let searched = searched.max(1.0);
        let rest = (whole - searched).max(0.0);
        if found == 0 {
            return (searched * 16.0).min(u64::MAX as f64) as u64;
        }
        let rate = found as f64 / searched;
        if rest * rate <= 2.0 * self.limit as f64 {
            return u64::MAX;
        }
        let width = self.limit as f64 / rate;
        (width.max(self.first_width as f64)).min(u64::MAX as f64) as u64
    }

    fn next(&mut self, found: usize) -> Option<Window> {
        if self.done {
            return None;
        }
        // How far the windows so far reach from where the search began.
        let searched = match self.edge {
            Some(edge) if self.newest_first => self.newest.saturating_sub(edge),
            Some(edge) => edge.saturating_sub(self.oldest),
            None => 0,
        };
        let whole = self.newest.saturating_sub(self.oldest) as f64;
        if self.fixed {
            if self.edge.is_some() {
                self.width = self.stream_width(found, searched as f64, whole);
            }
        } else {
            if self.edge.is_some() {
                let grow = growth(found, searched as f64, self.limit);
                self.width = (searched.max(1) as f64 * grow).min(u64::MAX as f64) as u64;
            }
            if (searched as f64 + self.width as f64) > whole * REST_SHARE {
                self.width = u64::MAX;
            }
        }
        let (from, to) = if self.newest_first {
            let from = self.edge.unwrap_or(self.newest).saturating_sub(self.width);
            let from = (from > self.oldest).then_some(from);
            (from, self.edge)
        } else {
            let to = self.edge.unwrap_or(self.oldest).saturating_add(self.width);
            (self.edge, (to <= self.newest).then_some(to))
        };
        let next_edge = if self.newest_first { from } else { to };
        self.done = next_edge.is_none();
        self.edge = next_edge;
        Some(Window {
            from,
            to,
            ..Window::ALL
        })
    }
}

/// Windows of trace durations from the longest down, the last unbounded below, aimed
/// with the blocks' duration histograms: the first holds about `limit` × 4 traces of
/// the blocks, each next one grows by [`growth`]. Blocks without a histogram (written
/// before they were recorded) make it one window of everything.
pub(crate) struct DurationWindows {
    /// Traces per duration bucket over all blocks (empty: unknown).
    histogram: Vec<u64>,
    limit: usize,
    /// The lowest bucket searched so far.
    bucket: Option<usize>,
    done: bool,
}

impl DurationWindows {
    fn new(blocks: &[&(Block, Facts)], limit: usize) -> DurationWindows {
        let mut histogram: Vec<u64> = Vec::new();
        let known = blocks
            .iter()
            .all(|(b, _)| !b.meta().trace_durations.is_empty());
        if known {
            for (b, _) in blocks {
                let b = b.meta();
                if histogram.len() < b.trace_durations.len() {
                    histogram.resize(b.trace_durations.len(), 0);
                }
                for (sum, n) in histogram.iter_mut().zip(&b.trace_durations) {
                    *sum += n;
                }
            }
        }
        DurationWindows {
            histogram,
            limit,
            bucket: None,
            done: blocks.is_empty(),
        }
    }

    fn next(&mut self, found: usize) -> Option<Window> {
        if self.done {
            return None;
        }
        if self.histogram.is_empty() {
            self.done = true;
            return Some(Window::ALL);
        }
        let top = self.bucket.unwrap_or(self.histogram.len());
        let searched: u64 = self.histogram[top..].iter().sum();
        let wanted = match self.bucket {
            None => self.limit.max(1) as f64 * 4.0,
            Some(_) => searched as f64 * growth(found, searched as f64, self.limit),
        };
        let total: u64 = self.histogram.iter().sum();
        let mut bucket = top;
        let mut more = 0u64;
        while bucket > 0 && (more as f64) < wanted {
            bucket -= 1;
            more += self.histogram[bucket];
        }
        if (searched + more) as f64 > total as f64 * REST_SHARE {
            bucket = 0;
        }
        let below = self.bucket.map(|b| duration_bucket_bounds(b).0);
        let low = duration_bucket_bounds(bucket).0;
        self.done = bucket == 0;
        self.bucket = Some(bucket);
        Some(Window {
            min_duration: (low > 0).then_some(low),
            below_duration: below,
            ..Window::ALL
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(start: u64, end: u64, traces: u64, durations: &[u64]) -> (Block, Facts) {
        let meta: traceql_format::block::BlockMeta = serde_json::from_value(serde_json::json!({
            "format": "traceql-block", "version": 1, "id": "b",
            "start_unix_nano": start, "end_unix_nano": end, "traces": traces,
            "spans": traces * 10, "min_trace_id": "00", "max_trace_id": "ff",
            "row_groups": 1, "bytes": 1, "typed_columns": [],
            "trace_durations": durations,
        }))
        .unwrap();
        let facts = meta.facts();
        let source = crate::source::TraceqlSource::new(meta).unwrap();
        (std::sync::Arc::new(source), facts)
    }

    /// All windows, feeding back `found` traces after each.
    fn windows(mut rounds: Rounds, found: &[usize]) -> Vec<Window> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(w) = rounds.next(found.get(i).copied().unwrap_or(0)) {
            out.push(w);
            i += 1;
        }
        out
    }

    #[test]
    fn time_windows_cover_the_range_once_from_either_end() {
        let blocks = [
            block(0, 1_000_000, 50_000, &[]),
            block(900_000, 3_000_000, 50_000, &[]),
        ];
        let blocks: Vec<_> = blocks.iter().collect();
        for found in [&[][..], &[1, 3, 7][..], &[0, 0, 0, 0][..]] {
            let newest = windows(Rounds::new(Order::Newest, &blocks, 20), found);
            assert!(newest.len() > 1);
            assert_eq!(newest[0].to, None);
            assert_eq!(newest.last().unwrap().from, None);
            for pair in newest.windows(2) {
                assert_eq!(pair[1].to, pair[0].from, "adjoining, newest first");
            }
            let oldest = windows(Rounds::new(Order::Oldest, &blocks, 20), found);
            assert_eq!(oldest[0].from, None);
            assert_eq!(oldest.last().unwrap().to, None);
            for pair in oldest.windows(2) {
                assert_eq!(pair[1].from, pair[0].to, "adjoining, oldest first");
            }
        }
    }

    #[test]
    fn streaming_windows_are_aimed_at_the_matches_each_holds() {
        let blocks = [block(0, 1_000_000, 100_000, &[])];
        let blocks: Vec<_> = blocks.iter().collect();
        // Every trace matches: about 10,000 of the 100,000 traces per window.
        let found: Vec<usize> = (0..20).map(|i| i * 10_000).collect();
        let newest = windows(
            Rounds::streaming(Order::Newest, &blocks, 10_000).unwrap(),
            &found,
        );
        assert!((9..=11).contains(&newest.len()), "{}", newest.len());
        assert_eq!(newest[0].to, None);
        assert_eq!(newest.last().unwrap().from, None);
        for pair in newest.windows(2) {
            assert_eq!(pair[1].to, pair[0].from, "adjoining, newest first");
        }
        let widths: Vec<u64> = newest[1..newest.len() - 1]
            .iter()
            .map(|w| w.to.unwrap() - w.from.unwrap())
            .collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{widths:?}");
        // One trace in a hundred matches: after the first window, the rest at once.
        let sparse = windows(
            Rounds::streaming(Order::Oldest, &blocks, 10_000).unwrap(),
            &[0, 100],
        );
        assert_eq!(sparse.len(), 2, "{sparse:?}");
        assert_eq!(sparse[1].to, None);
        assert!(Rounds::streaming(Order::Slowest, &blocks, 10_000).is_none());
        assert!(Rounds::streaming(Order::Newest, &blocks, 100_000).is_none());
    }

    #[test]
    fn duration_windows_go_down_the_histogram_and_end_unbounded() {
        // 1000 traces of 1-2 ms, 100 of 16-33 ms, 10 of 268-537 ms.
        let mut histogram = vec![0; 30];
        histogram[21] = 1000;
        histogram[25] = 100;
        histogram[29] = 10;
        let blocks = [block(0, 10, 1110, &histogram)];
        let blocks: Vec<_> = blocks.iter().collect();
        let all = windows(Rounds::new(Order::Slowest, &blocks, 2), &[1, 2, 3]);
        // The first window holds the 10 slowest (>= 2^28 ns), enough for 4 × 2.
        assert_eq!(all[0].min_duration, Some(1 << 28));
        assert_eq!(all[0].below_duration, None);
        assert_eq!(all.last().unwrap().min_duration, None);
        for pair in all.windows(2) {
            assert_eq!(pair[1].below_duration, pair[0].min_duration, "adjoining");
        }
        // Blocks without a histogram: one window of everything.
        let old = [block(0, 10, 1110, &[])];
        let old: Vec<_> = old.iter().collect();
        assert_eq!(
            windows(Rounds::new(Order::Slowest, &old, 2), &[]),
            vec![Window::ALL]
        );
    }
}

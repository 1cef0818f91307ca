//! Choosing the blocks a query may need, and one scan of the span table over them.

use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{col, lit};
use traceql_format::block::BlockMeta;
use traceql_format::facts::Facts;
use traceql_format::schema::columns as c;
use traceql_parser::ast::Pipeline;
use traceql_planner::prune::may_match;

use super::{Engine, EngineError};
use crate::table::span_table;

/// The traces a query looks at: those that overlap `[start, end]` (unix nanoseconds),
/// unbounded where `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Only traces that end at or after this time.
    pub start_unix_nano: Option<u64>,
    /// Only traces that start at or before this time.
    pub end_unix_nano: Option<u64>,
}

impl TimeRange {
    /// Every trace.
    pub const ALL: TimeRange = TimeRange {
        start_unix_nano: None,
        end_unix_nano: None,
    };

    /// Whether block `b` may hold traces in the range.
    fn may_hold(&self, b: &BlockMeta) -> bool {
        self.start_unix_nano.is_none_or(|s| b.end_unix_nano >= s)
            && self.end_unix_nano.is_none_or(|e| b.start_unix_nano <= e)
    }
}

impl Engine {
    /// The blocks that may hold traces in `range` and, if `pipeline` is given, spans it
    /// selects (judged from each block's facts alone).
    pub(crate) fn select(
        &self,
        range: &TimeRange,
        pipeline: Option<&Pipeline>,
    ) -> Vec<&(BlockMeta, Facts)> {
        self.blocks
            .iter()
            .filter(|(b, _)| range.may_hold(b))
            .filter(|(_, facts)| pipeline.is_none_or(|p| may_match(p, facts)))
            .collect()
    }

    /// A scan of `blocks` limited to the traces in `range` that start in `window`,
    /// with the facts of those blocks.
    pub(crate) async fn scan(
        &self,
        range: &TimeRange,
        blocks: &[&(BlockMeta, Facts)],
        window: Window,
    ) -> Result<(LogicalPlan, Facts), EngineError> {
        let blocks: Vec<&(BlockMeta, Facts)> = blocks
            .iter()
            .copied()
            .filter(|(b, _)| window.may_hold(b))
            .collect();
        let facts = Facts::union(blocks.iter().map(|(_, f)| f));
        let metas: Vec<BlockMeta> = blocks.iter().map(|(b, _)| b.clone()).collect();
        let table = span_table(&self.ctx, &self.store, &metas).await?;
        let mut builder = LogicalPlanBuilder::scan(
            "spans",
            datafusion::datasource::provider_as_source(table),
            None,
        )?;
        let trace_start = || col(c::TRACE_START_UNIX_NANO);
        if let Some(end) = range.end_unix_nano {
            builder = builder.filter(trace_start().lt_eq(lit(end)))?;
        }
        if let Some(start) = range.start_unix_nano {
            builder =
                builder.filter((trace_start() + col(c::TRACE_DURATION_NANO)).gt_eq(lit(start)))?;
        }
        if let Some(from) = window.from {
            builder = builder.filter(trace_start().gt_eq(lit(from)))?;
        }
        if let Some(to) = window.to {
            builder = builder.filter(trace_start().lt(lit(to)))?;
        }
        Ok((builder.build()?, facts))
    }
}

/// A range of trace starts searched in one round: `[from, to)`, unbounded where `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    from: Option<u64>,
    to: Option<u64>,
}

impl Window {
    pub(crate) const ALL: Window = Window {
        from: None,
        to: None,
    };

    /// Whether a block may hold traces starting in the window.
    fn may_hold(&self, b: &BlockMeta) -> bool {
        self.from.is_none_or(|f| b.end_unix_nano >= f)
            && self.to.is_none_or(|t| b.start_unix_nano < t)
    }
}

/// The windows of a newest-first search: ranges of trace starts from the newest
/// backwards, each older than the last, the last unbounded below. A search stops after
/// the round in which it has `limit` traces: older windows cannot hold newer traces, so
/// newest-first results stay exact while a small limit reads little.
///
/// The first window is sized to hold about `limit` × 4 traces at the blocks' average
/// rate. Each next one is sized from what the rounds so far found: wide enough to hold
/// twice the traces still missing at the rate seen (at least twice, at most 64 times as
/// wide as all windows so far; 8 times when nothing was found yet).
pub(crate) struct NewestFirst {
    newest: u64,
    oldest: u64,
    limit: usize,
    /// The oldest start searched so far (the `to` of the next window).
    to: Option<u64>,
    /// The width of the next window.
    width: u64,
    done: bool,
}

impl NewestFirst {
    /// The windows over `blocks` for a search of `limit` traces.
    pub(crate) fn new(blocks: &[&(BlockMeta, Facts)], limit: usize) -> NewestFirst {
        let newest = blocks
            .iter()
            .map(|(b, _)| b.end_unix_nano)
            .max()
            .unwrap_or(0);
        let oldest = blocks
            .iter()
            .map(|(b, _)| b.start_unix_nano)
            .min()
            .unwrap_or(0);
        let traces: u64 = blocks.iter().map(|(b, _)| b.traces).sum();
        let span = newest.saturating_sub(oldest).max(1);
        let density = traces.max(1) as f64 / span as f64;
        let single = traces == 0 || limit as u64 >= traces / 4;
        NewestFirst {
            newest,
            oldest,
            limit,
            to: None,
            width: if single {
                u64::MAX
            } else {
                ((limit.max(1) as f64 * 4.0) / density).max(1.0) as u64
            },
            done: blocks.is_empty(),
        }
    }

    /// The next window, given the traces found so far; `None` when the whole range has
    /// been searched.
    pub(crate) fn next(&mut self, found: usize) -> Option<Window> {
        if self.done {
            return None;
        }
        if let Some(to) = self.to {
            let searched = self.newest.saturating_sub(to).max(1);
            let grow = if found == 0 {
                16.0
            } else {
                let rate = found as f64 / searched as f64;
                let missing = self.limit.saturating_sub(found).max(1) as f64;
                (2.0 * missing / rate / searched as f64).clamp(2.0, 64.0)
            };
            self.width = (searched as f64 * grow).min(u64::MAX as f64) as u64;
        }
        let edge = self.to.unwrap_or(self.newest);
        let from = edge.saturating_sub(self.width);
        let window = if from <= self.oldest {
            self.done = true;
            Window {
                from: None,
                to: self.to,
            }
        } else {
            Window {
                from: Some(from),
                to: self.to,
            }
        };
        self.to = window.from;
        Some(window)
    }
}

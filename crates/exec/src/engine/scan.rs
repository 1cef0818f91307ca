//! Choosing the blocks a query may need, and one scan of the span table over them.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::JoinType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{col, lit};
use traceql_format::facts::Facts;
use traceql_format::ids::TraceId;
use traceql_format::schema::columns as c;
use traceql_parser::ast::Pipeline;
use traceql_planner::lower::plan_pipeline;
use traceql_planner::prune::may_match;

use super::{Engine, EngineError};
use crate::source::{Block, StartRange};
use crate::table::{SpanTable, span_table};

/// The search of `query`, if one is given, for commands that look only at the traces a
/// search matches (`what` names them in the error for a metrics query).
pub(crate) fn search_of<'a>(
    query: Option<&'a crate::engine::ParsedQuery>,
    what: &str,
) -> Result<Option<&'a Pipeline>, EngineError> {
    match query.map(|q| &q.query().body) {
        None => Ok(None),
        Some(traceql_parser::ast::QueryBody::Search(pipeline)) => Ok(Some(pipeline)),
        Some(traceql_parser::ast::QueryBody::Metrics(_)) => Err(EngineError::InvalidInput(
            format!("{what} take a search (`{{ … }}`), not a metrics query"),
        )),
    }
}

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
    fn may_hold(&self, b: &Block) -> bool {
        let b = b.meta();
        self.start_unix_nano.is_none_or(|s| b.end_unix_nano >= s)
            && self.end_unix_nano.is_none_or(|e| b.start_unix_nano <= e)
    }

    /// Whether every trace of block `b` is in the range, judged from its time span:
    /// only for blocks whose time span is exact and whose traces are all whole (Grafana
    /// Tempo records a block's times to the second, and a trace written in parts has
    /// parts in other blocks).
    fn holds(&self, b: &Block) -> bool {
        let layout = b.layout();
        let b = b.meta();
        layout.exact_times
            && layout.whole_traces
            && self.start_unix_nano.is_none_or(|s| s <= b.start_unix_nano)
            && self.end_unix_nano.is_none_or(|e| b.end_unix_nano <= e)
    }
}

impl Engine {
    /// The blocks that may hold traces in `range` and, if `pipeline` is given, spans it
    /// selects (judged from each block's facts alone).
    pub(crate) fn select(
        &self,
        range: &TimeRange,
        pipeline: Option<&Pipeline>,
    ) -> Vec<&(Block, Facts)> {
        self.every_block()
            .filter(|(b, _)| range.may_hold(b))
            .filter(|(_, facts)| pipeline.is_none_or(|p| may_match(p, facts)))
            .collect()
    }

    /// A scan of `blocks` limited to the traces in `range` that start in `window`,
    /// with the facts of those blocks.
    pub(crate) async fn scan(
        &self,
        range: &TimeRange,
        blocks: &[&(Block, Facts)],
        window: Window,
    ) -> Result<(LogicalPlan, Facts), EngineError> {
        let blocks: Vec<&(Block, Facts)> = blocks
            .iter()
            .copied()
            .filter(|(b, _)| window.may_hold(b))
            .collect();
        let facts = Facts::union(blocks.iter().map(|(_, f)| f));
        let sources: Vec<Block> = blocks.iter().map(|(b, _)| Arc::clone(b)).collect();
        let starts = StartRange {
            from: window.from,
            to: window.to,
        };
        let table: Arc<dyn TableProvider> = if sources.is_empty() {
            span_table(&self.store, &sources)?
        } else {
            let table = SpanTable::try_new(&self.store, &sources)?.with_starts(starts);
            match window.trace {
                Some(id) => Arc::new(table.for_trace(id)),
                None => Arc::new(table),
            }
        };
        let mut builder = LogicalPlanBuilder::scan(
            "spans",
            datafusion::datasource::provider_as_source(table),
            None,
        )?;
        if let Some(id) = window.trace {
            let id = ScalarValue::FixedSizeBinary(16, Some(id.to_vec()));
            builder = builder.filter(col(c::TRACE_ID).eq(lit(id)))?;
        }
        let trace_start = || col(c::TRACE_START_UNIX_NANO);
        // Every trace of a block lies between its earliest span start and latest span
        // end, so a range that holds whole blocks needs no filter (nor its columns): a
        // metrics query over the store's whole time span reads two columns fewer.
        let held = blocks.iter().all(|(b, _)| range.holds(b));
        if let Some(end) = range.end_unix_nano.filter(|_| !held) {
            builder = builder.filter(trace_start().lt_eq(lit(end)))?;
        }
        if let Some(start) = range.start_unix_nano.filter(|_| !held) {
            builder =
                builder.filter((trace_start() + col(c::TRACE_DURATION_NANO)).gt_eq(lit(start)))?;
        }
        if let Some(from) = window.from {
            builder = builder.filter(trace_start().gt_eq(lit(from)))?;
        }
        if let Some(to) = window.to {
            builder = builder.filter(trace_start().lt(lit(to)))?;
        }
        let trace_duration = || col(c::TRACE_DURATION_NANO);
        if let Some(min) = window.min_duration {
            builder = builder.filter(trace_duration().gt_eq(lit(min)))?;
        }
        if let Some(below) = window.below_duration {
            builder = builder.filter(trace_duration().lt(lit(below)))?;
        }
        Ok((builder.build()?, facts))
    }
}

impl Engine {
    /// The rows of `plan` (which has a `trace_id` column) whose trace `pipeline` matches
    /// in `range`: a semi-join with the distinct trace ids of the pipeline's matches, a
    /// second scan of the blocks that may hold them.
    pub(crate) async fn in_matching_traces(
        &self,
        plan: LogicalPlan,
        range: &TimeRange,
        pipeline: &Pipeline,
    ) -> Result<LogicalPlan, EngineError> {
        let matching = self.select(range, Some(pipeline));
        let (scan, facts) = self.scan(range, &matching, Window::ALL).await?;
        let matched = plan_pipeline(pipeline, scan, &facts, false, &[])?;
        let traces = LogicalPlanBuilder::from(matched.plan)
            .project(vec![col(c::TRACE_ID).alias("__matched")])?
            .distinct()?
            .build()?;
        // The matched trace ids are the join's build side (held in memory), the rows of
        // `plan` stream past them: with `plan` as the build side, a service graph of
        // `{ status = error }` over 10M spans held every request (3.6 GB, 5.4 s).
        Ok(LogicalPlanBuilder::from(traces)
            .join(
                plan,
                JoinType::RightSemi,
                (vec!["__matched"], vec![c::TRACE_ID]),
                None,
            )?
            .build()?)
    }
}

/// The traces searched in one round: those starting in `[from, to)` whose duration is
/// in `[min_duration, below_duration)`, unbounded where `None`, and only trace `trace`
/// if given (a trace lookup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) from: Option<u64>,
    pub(crate) to: Option<u64>,
    pub(crate) min_duration: Option<u64>,
    pub(crate) below_duration: Option<u64>,
    pub(crate) trace: Option<TraceId>,
}

impl Window {
    /// Every trace.
    pub(crate) const ALL: Window = Window {
        from: None,
        to: None,
        min_duration: None,
        below_duration: None,
        trace: None,
    };

    /// Whether a block may hold traces of the window.
    fn may_hold(&self, b: &Block) -> bool {
        let b = b.meta();
        self.from.is_none_or(|f| b.end_unix_nano >= f)
            && self.to.is_none_or(|t| b.start_unix_nano < t)
            && self
                .min_duration
                .is_none_or(|m| b.trace_duration_bound().is_none_or(|bound| bound > m))
    }
}

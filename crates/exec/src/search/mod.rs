//! TraceQL search over a store: [`SearchOptions`], rounds over the engine core that
//! find the first traces in the asked [`Order`], and the Tempo-shaped
//! [`SearchResponse`].

mod assemble;
mod batches;
mod response;
mod results;

pub use response::{Attribute, SearchMetrics, SearchResponse, SpanResult, SpanSet, TraceResult};
pub use results::{Columns, SPAN_COLUMNS, SearchResults};

use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::prelude::DataFrame;
use traceql_format::facts::Facts;
use traceql_parser::Query;
use traceql_parser::ast::{Pipeline, QueryBody};
use traceql_planner::lower::{SearchPlan, plan_search};

use crate::engine::{
    Engine, EngineError, Order, ParsedQuery, QueryStats, Rounds, TimeRange, Window, parse,
};
use crate::source::Block;
use assemble::Assembler;
use batches::SpanBatches;

/// About how many traces a search that hands out its results as it goes
/// ([`Engine::search_each`]) holds at a time: one window of trace starts.
pub const WINDOW_TRACES: usize = 40_000;

/// Options of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchOptions {
    /// At most this many traces (default 20): the first in `order`.
    pub limit: usize,
    /// Which traces come first (default newest). The result is exact over the whole
    /// range: the 20 slowest matching traces, not the slowest of 20 newest.
    pub order: Order,
    /// At most this many spans shown per spanset (default 3); `matched` counts all.
    pub spans_per_spanset: usize,
    /// Only traces that end at or after this time (unix nanoseconds).
    pub start_unix_nano: Option<u64>,
    /// Only traces that start at or before this time (unix nanoseconds).
    pub end_unix_nano: Option<u64>,
}

impl SearchOptions {
    /// The traces the search looks at.
    pub fn range(&self) -> TimeRange {
        TimeRange {
            start_unix_nano: self.start_unix_nano,
            end_unix_nano: self.end_unix_nano,
        }
    }
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: 20,
            order: Order::Newest,
            spans_per_spanset: 3,
            start_unix_nano: None,
            end_unix_nano: None,
        }
    }
}

/// The pipeline of a search query (`None` for a metrics query), for block pruning.
pub(crate) fn search_pipeline(query: &Query) -> Option<&Pipeline> {
    match &query.body {
        QueryBody::Search(pipeline) => Some(pipeline),
        QueryBody::Metrics(_) => None,
    }
}

impl Engine {
    /// Parses, validates and plans `query`.
    pub async fn plan(
        &self,
        query: &str,
        options: &SearchOptions,
    ) -> Result<(Query, SearchPlan), EngineError> {
        let parsed = parse(query)?;
        let plan = self.plan_parsed(&parsed, options).await?;
        Ok((parsed, plan))
    }

    /// Plans a parsed search over the blocks in the range of `options` that may match.
    pub(crate) async fn plan_parsed(
        &self,
        parsed: &Query,
        options: &SearchOptions,
    ) -> Result<SearchPlan, EngineError> {
        let blocks = self.select(&options.range(), search_pipeline(parsed));
        let (scan, facts) = self.scan(&options.range(), &blocks, Window::ALL).await?;
        Ok(plan_search(parsed, scan, &facts)?)
    }

    /// The spans `query` matches as a DataFrame: one row per span with its trace,
    /// spanset index (`__spanset`) and the attributes the query shows.
    pub async fn dataframe(&self, query: &str) -> Result<DataFrame, EngineError> {
        let (_, plan) = self.plan(query, &SearchOptions::default()).await?;
        Ok(DataFrame::new(self.ctx.state(), plan.plan))
    }

    /// Runs a search.
    pub async fn search(
        &self,
        query: &str,
        options: &SearchOptions,
    ) -> Result<SearchResponse, EngineError> {
        Ok(self.search_with_stats(query, options).await?.0)
    }

    /// Runs a search and reports what it read and where the time went.
    pub async fn search_with_stats(
        &self,
        query: &str,
        options: &SearchOptions,
    ) -> Result<(SearchResponse, QueryStats), EngineError> {
        let (results, stats) = self.search_results(query, options).await?;
        Ok((results.into_response(), stats))
    }

    /// Runs a search and hands back its traces held compactly, to be read or written
    /// one at a time (see [`SearchResults`]), and what it read and where the time went.
    /// Large results take a fraction of the memory of a [`SearchResponse`].
    pub async fn search_results(
        &self,
        query: &str,
        options: &SearchOptions,
    ) -> Result<(SearchResults, QueryStats), EngineError> {
        let started = Instant::now();
        let parsed = ParsedQuery::parse(query)?;
        let parsing = started.elapsed();
        let (results, mut stats) = self.search_parsed(&parsed, options).await?;
        stats.planning += parsing;
        Ok((results, stats))
    }

    /// Runs a search already parsed, as [`Self::search_results`] does.
    pub async fn search_parsed(
        &self,
        query: &ParsedQuery,
        options: &SearchOptions,
    ) -> Result<(SearchResults, QueryStats), EngineError> {
        let started = Instant::now();
        let blocks = self.select(&options.range(), search_pipeline(query.query()));
        self.search_blocks(query, options, &blocks, started, None)
            .await
    }

    /// Runs a search already parsed and hands every span it matches in `range` to
    /// `each` as Arrow record batches, while the scan goes on: all matches, in no
    /// particular order, one row per span in each spanset that holds it, with its
    /// trace's fields on every row. The columns are those of
    /// [`SearchResults::record_batch`] (names, content), but nothing is gathered into
    /// traces, ranked or limited, so a program that takes every match in columns (an
    /// embedding service, a notebook) gets them for a few conversions a batch and
    /// holds one batch at a time. A trace written in parts and not yet compacted has
    /// each part's own trace start and duration. Returns what the search read.
    pub async fn search_batches(
        &self,
        query: &ParsedQuery,
        range: &TimeRange,
        mut each: impl FnMut(RecordBatch) -> Result<(), EngineError>,
    ) -> Result<QueryStats, EngineError> {
        let started = Instant::now();
        let io = self.store.io();
        let blocks = self.select(range, search_pipeline(query.query()));
        let (scan, facts) = self.scan(range, &blocks, Window::ALL).await?;
        let plan = plan_search(query.query(), scan, &facts)?;
        let mut stats = QueryStats {
            blocks: blocks.len() as u64,
            planning: started.elapsed(),
            ..QueryStats::default()
        };
        let batches = SpanBatches::new(&plan);
        self.execute_each(&plan.plan, &blocks, true, &mut stats, |batch| {
            each(batches.convert(&batch)?)
        })
        .await?;
        stats.io = self.store.io().since(io);
        Ok(stats)
    }

    /// Runs a search already parsed and hands out its traces as they become final, for
    /// a client that shows results while the search goes on: after each round of the
    /// search but the last (see [`Engine::search_results`]: a small limit is searched in
    /// windows of trace starts, newest or oldest first), the traces that round found,
    /// which rank before any a later round can find, with what the search has read so
    /// far; then the last round's traces with the search's metrics (`each`'s flag says
    /// which call is the last). Each trace is handed out once; all of them are the
    /// traces [`Self::search_parsed`] finds. A search in one round (slowest first,
    /// Grafana Tempo's blocks) hands out everything at the end.
    pub async fn search_progressive(
        &self,
        query: &ParsedQuery,
        options: &SearchOptions,
        mut each: impl FnMut(SearchResults, bool) -> Result<(), EngineError> + Send,
    ) -> Result<QueryStats, EngineError> {
        let started = Instant::now();
        let blocks = self.select(&options.range(), search_pipeline(query.query()));
        let mut partial = |results| each(results, false);
        let (last, stats) = self
            .search_blocks(query, options, &blocks, started, Some(&mut partial))
            .await?;
        each(last, true)?;
        Ok(stats)
    }

    /// Runs a search over `blocks`, the blocks it may match, in the rounds of its
    /// order; `started`: when the search began. With `partial`, each round but the last
    /// hands it the traces the round found (see [`Self::search_progressive`]), and the
    /// results returned are the last round's.
    async fn search_blocks(
        &self,
        query: &ParsedQuery,
        options: &SearchOptions,
        blocks: &[&(Block, Facts)],
        started: Instant,
        mut partial: Option<&mut (dyn FnMut(SearchResults) -> Result<(), EngineError> + Send)>,
    ) -> Result<(SearchResults, QueryStats), EngineError> {
        let io = self.store.io();
        let mut stats = QueryStats {
            blocks: blocks.len() as u64,
            planning: started.elapsed(),
            ..QueryStats::default()
        };
        let mut assembler: Option<Assembler> = None;
        let mut held = self.results_reservation();
        let mut windows = Rounds::new(options.order, blocks, options.limit);
        // Traces handed out by earlier rounds, and all traces those rounds saw.
        let (mut handed, mut inspected) = (0, 0);
        let mut remaining = options.clone();
        while let Some(window) =
            windows.next(inspected + assembler.as_ref().map_or(0, Assembler::trace_count))
        {
            let whole = window == Window::ALL;
            let round = Round {
                query,
                options: &remaining,
                blocks,
                window,
                whole,
            };
            let found = self
                .search_round(round, &mut assembler, &mut held, &mut stats)
                .await?
                .trace_count();
            if handed + found >= options.limit {
                break;
            }
            if let Some(each) = partial.as_mut()
                && let Some(round) = assembler.take()
            {
                stats.io = self.store.io().since(io);
                inspected += found;
                let results = round.finish(search_metrics(inspected as u64, &stats, blocks));
                handed += results.len();
                remaining.limit = options.limit - handed;
                each(results)?;
            }
        }
        stats.io = self.store.io().since(io);
        let inspected = inspected + assembler.as_ref().map_or(0, Assembler::trace_count);
        let metrics = search_metrics(inspected as u64, &stats, blocks);
        let results = match assembler {
            Some(a) => a.finish(metrics),
            None => SearchResults::empty(metrics),
        };
        Ok((results, stats))
    }

    /// Runs one round of a search: plans it over the traces of the round's window and
    /// hands the rows to `assembler` (made from the plan if there is none yet), holding
    /// what it keeps in `held`, within the memory limit. Returns the assembler.
    async fn search_round<'a>(
        &self,
        round: Round<'_>,
        assembler: &'a mut Option<Assembler>,
        held: &mut MemoryReservation,
        stats: &mut QueryStats,
    ) -> Result<&'a mut Assembler, EngineError> {
        let started = Instant::now();
        let range = round.options.range();
        let (scan, facts) = self.scan(&range, round.blocks, round.window).await?;
        let plan = plan_search(round.query.query(), scan, &facts)?;
        stats.planning += started.elapsed();
        let assembler = assembler.get_or_insert_with(|| {
            Assembler::new(
                &plan,
                round.options.limit,
                round.options.spans_per_spanset,
                round.options.order,
            )
        });
        self.execute_each(&plan.plan, round.blocks, round.whole, stats, |batch| {
            assembler.push(&batch)?;
            self.hold(held, assembler.held_bytes())
        })
        .await?;
        Ok(assembler)
    }

    /// Runs a search already parsed and hands its traces to `each` a window at a time,
    /// in the search's order, so that a search for many traces (a limit above
    /// [`WINDOW_TRACES`]) holds one window of about that many matching traces instead of
    /// all it finds: windows of trace starts, newest (or oldest) first, each exact, since
    /// every trace of a window ranks before every trace of the next; the first holds
    /// that many traces of the store, the next are sized from the rate of matches so
    /// far, so a selective search takes two rounds. A slowest-first search,
    /// or one over blocks out of trace order that all share an instant (Grafana Tempo's),
    /// is handed over in one piece. Returns what the search read.
    pub async fn search_each(
        &self,
        query: &ParsedQuery,
        options: &SearchOptions,
        each: impl FnMut(SearchResults) -> Result<(), EngineError>,
    ) -> Result<(SearchMetrics, QueryStats), EngineError> {
        self.search_each_in(query, options, WINDOW_TRACES, each)
            .await
    }

    /// [`Self::search_each`] with windows of about `per_window` traces.
    pub async fn search_each_in(
        &self,
        query: &ParsedQuery,
        options: &SearchOptions,
        per_window: usize,
        mut each: impl FnMut(SearchResults) -> Result<(), EngineError>,
    ) -> Result<(SearchMetrics, QueryStats), EngineError> {
        let started = Instant::now();
        let blocks = self.select(&options.range(), search_pipeline(query.query()));
        let per_window = per_window.max(1);
        let windows = (options.limit > per_window)
            .then(|| Rounds::streaming(options.order, &blocks, per_window))
            .flatten();
        let Some(mut windows) = windows else {
            let (results, stats) = self
                .search_blocks(query, options, &blocks, started, None)
                .await?;
            let metrics = results.metrics.clone();
            each(results)?;
            return Ok((metrics, stats));
        };
        let io = self.store.io();
        let mut stats = QueryStats {
            blocks: blocks.len() as u64,
            planning: started.elapsed(),
            ..QueryStats::default()
        };
        let mut inspected_traces = 0;
        let mut handed = 0;
        let mut held = self.results_reservation();
        while let Some(window) = windows.next(inspected_traces as usize) {
            // Each window gets an assembler of its own, for the traces still wanted.
            let remaining = SearchOptions {
                limit: options.limit - handed,
                ..options.clone()
            };
            // A window here holds tens of thousands of traces: read as a whole scan is
            // (split over every core where no operator needs trace order), not as the
            // few pages of a limited search's window.
            let round = Round {
                query,
                options: &remaining,
                blocks: &blocks,
                window,
                whole: true,
            };
            let mut assembler = None;
            self.search_round(round, &mut assembler, &mut held, &mut stats)
                .await?;
            let Some(assembler) = assembler else {
                continue;
            };
            inspected_traces += assembler.trace_count() as u64;
            let results = assembler.finish(SearchMetrics::default());
            handed += results.len();
            each(results)?;
            if handed >= options.limit {
                break;
            }
        }
        stats.io = self.store.io().since(io);
        Ok((search_metrics(inspected_traces, &stats, &blocks), stats))
    }

    /// A reservation in the engine's memory pool for the traces a search holds, so the
    /// memory limit covers results as it covers operators.
    fn results_reservation(&self) -> MemoryReservation {
        MemoryConsumer::new("search results").register(&self.ctx.runtime_env().memory_pool)
    }

    /// Resizes `reservation` to `bytes`: the memory limit's error if they do not fit.
    fn hold(&self, reservation: &mut MemoryReservation, bytes: usize) -> Result<(), EngineError> {
        reservation
            .try_resize(bytes)
            .map_err(|e| EngineError::with_memory_limit(e, self.memory_limit()))
    }
}

/// One round of a search: the query, its options, the blocks it may match, the window
/// of traces the round reads, and whether that reads the blocks whole (see
/// [`Engine::execute_each`]).
struct Round<'a> {
    query: &'a ParsedQuery,
    options: &'a SearchOptions,
    blocks: &'a [&'a (Block, Facts)],
    window: Window,
    whole: bool,
}

/// What a search read, having found `inspected_traces` traces over `blocks`.
fn search_metrics(
    inspected_traces: u64,
    stats: &QueryStats,
    blocks: &[&(Block, Facts)],
) -> SearchMetrics {
    SearchMetrics {
        inspected_traces,
        inspected_bytes: stats.bytes_scanned,
        inspected_spans: stats.spans_scanned,
        total_blocks: blocks.len() as u64,
        total_block_bytes: blocks.iter().map(|(b, _)| b.meta().bytes).sum(),
    }
}

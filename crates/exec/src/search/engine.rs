//! The library API: open a store, search it with TraceQL, get Tempo-shaped results or
//! a DataFusion `DataFrame`, or register the span table in an existing session.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext, col, lit};
use traceql_format::facts::Facts;
use traceql_format::ids::parse_trace_id;
use traceql_format::schema::columns as c;
use traceql_parser::Query;
use traceql_planner::lower::{SearchPlan, plan_search};
use traceql_planner::ops::planner::install;
use traceql_planner::prune::may_match;

use super::response::{Assembler, SearchMetrics, SearchResponse};
use super::stats::SearchStats;
use crate::store::{Store, StoreError, StoreOptions, open_store};
use crate::table::{session_config, span_table, union_typed_columns};
use traceql_format::block::BlockMeta;
use traceql_format::block::reader::decode_batch;
use traceql_format::model::Span;

/// Options of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchOptions {
    /// At most this many traces (default 20).
    pub limit: usize,
    /// At most this many spans shown per spanset (default 3); `matched` counts all.
    pub spans_per_spanset: usize,
    /// Only traces that end at or after this time (unix nanoseconds).
    pub start_unix_nano: Option<u64>,
    /// Only traces that start at or before this time (unix nanoseconds).
    pub end_unix_nano: Option<u64>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: 20,
            spans_per_spanset: 3,
            start_unix_nano: None,
            end_unix_nano: None,
        }
    }
}

/// Why a search failed.
#[derive(Debug)]
pub enum EngineError {
    /// The query does not parse or validate; render it with [`EngineError::render`].
    Query {
        /// The query text.
        source: String,
        /// The diagnostic.
        error: traceql_parser::Error,
    },
    /// The query is valid but uses something the engine cannot run yet.
    Unsupported(String),
    /// An argument other than the query is malformed (e.g. a trace id).
    InvalidInput(String),
    /// The store could not be read.
    Store(StoreError),
    /// Planning or execution failed.
    Execution(DataFusionError),
}

impl EngineError {
    /// The CLI exit code: 2 for a query error, 3 for "not supported yet", else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Query { error, .. }
                if error.kind == traceql_parser::ErrorKind::Unsupported =>
            {
                3
            }
            EngineError::Query { .. } | EngineError::InvalidInput(_) => 2,
            EngineError::Unsupported(_) => 3,
            EngineError::Store(_) | EngineError::Execution(_) => 1,
        }
    }

    /// The error as text for a terminal: query errors with the source line and a caret.
    pub fn render(&self, color: bool) -> String {
        match self {
            EngineError::Query { source, error } => error.render(source, color),
            other => format!("error: {other}"),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Query { error, .. } => write!(f, "{}", error.message),
            EngineError::Unsupported(what) | EngineError::InvalidInput(what) => write!(f, "{what}"),
            EngineError::Store(e) => write!(f, "{e}"),
            EngineError::Execution(e) => write!(f, "{}", e.message()),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<DataFusionError> for EngineError {
    fn from(e: DataFusionError) -> Self {
        match e {
            DataFusionError::NotImplemented(what) => EngineError::Unsupported(what),
            DataFusionError::Context(_, inner) => EngineError::from(*inner),
            other => EngineError::Execution(other),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e)
    }
}

/// A plan and its parts, as `traceql explain` shows them.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The query in canonical form.
    pub canonical: String,
    /// The syntax tree as JSON.
    pub ast: String,
    /// The optimised logical plan.
    pub logical: String,
    /// The physical plan.
    pub physical: String,
}

/// Runs TraceQL over the blocks of a store.
pub struct Engine {
    pub(crate) store: Store,
    blocks: Vec<(BlockMeta, Facts)>,
    pub(crate) ctx: SessionContext,
}

fn scope_word(scope: traceql_parser::ast::AttributeScope) -> &'static str {
    traceql_format::schema::scope_prefix(scope).unwrap_or("")
}

pub(crate) fn parse(query: &str) -> Result<Query, EngineError> {
    traceql_parser::parse_and_validate(query).map_err(|error| EngineError::Query {
        source: query.to_string(),
        error,
    })
}

impl Engine {
    /// Opens the store at `location`: a directory path, a `file://` URL, or a cloud URL
    /// such as `s3://bucket/prefix` configured from the environment.
    pub async fn open(location: &str) -> Result<Engine, EngineError> {
        Engine::with_store(open_store(location, false, &StoreOptions::default())?).await
    }

    /// An engine over `store`, with the blocks it holds now.
    pub async fn with_store(store: Store) -> Result<Engine, EngineError> {
        Engine::with_config(store, session_config()).await
    }

    /// An engine over `store` whose DataFusion session uses `config` (start from
    /// [`session_config`] to keep Parquet pushdown on).
    pub async fn with_config(store: Store, config: SessionConfig) -> Result<Engine, EngineError> {
        let blocks = store
            .list_blocks()
            .await?
            .into_iter()
            .map(|b| {
                let facts = b.facts();
                (b, facts)
            })
            .collect();
        let ctx = install(&SessionContext::new_with_config(config));
        Ok(Engine { store, blocks, ctx })
    }

    /// The store's location, for messages.
    pub fn store_name(&self) -> &str {
        self.store.display()
    }

    /// The blocks of the store.
    pub fn blocks(&self) -> impl Iterator<Item = &BlockMeta> {
        self.blocks.iter().map(|(b, _)| b)
    }

    /// The attributes the blocks hold, as TraceQL names them (`resource.service.name`,
    /// `span.http.route`, `instrumentation.x`), sorted; for completion. Blocks that
    /// did not record their fallback keys contribute their typed columns only.
    pub fn attribute_names(&self) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        for (_, facts) in &self.blocks {
            for t in &facts.typed {
                names.insert(format!("{}.{}", scope_word(t.scope), t.key));
            }
            for (scope, key) in facts.fallback.iter().flatten() {
                names.insert(format!("{}.{key}", scope_word(*scope)));
            }
        }
        names.into_iter().collect()
    }

    /// Values the blocks' dictionaries record for a string attribute or `name`
    /// (`resource.service.name`, `span.http.route`, `name`), sorted; for completion.
    pub fn known_values(&self, field: &str) -> Vec<String> {
        let mut values = std::collections::BTreeSet::new();
        for (_, facts) in &self.blocks {
            if let Some(v) = facts.dictionaries.get(field) {
                values.extend(v.iter().cloned());
            }
        }
        values.into_iter().collect()
    }

    /// The DataFusion session the engine runs in.
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// The blocks in the time range of `options` that may hold matches of `query`
    /// (all of them without a query).
    pub(crate) fn select(
        &self,
        options: &SearchOptions,
        query: Option<&Query>,
    ) -> Vec<&(BlockMeta, Facts)> {
        self.blocks
            .iter()
            .filter(|(b, _)| options.start_unix_nano.is_none_or(|s| b.end_unix_nano >= s))
            .filter(|(b, _)| options.end_unix_nano.is_none_or(|e| b.start_unix_nano <= e))
            .filter(|(_, facts)| query.is_none_or(|q| may_match(q, facts)))
            .collect()
    }

    /// A scan of `blocks` limited to the time range of `options`, with their facts.
    pub(crate) async fn scan_range(
        &self,
        options: &SearchOptions,
        blocks: &[&(BlockMeta, Facts)],
    ) -> Result<(LogicalPlan, Facts), EngineError> {
        self.scan(options, blocks, Window::ALL).await
    }

    /// A scan of `blocks` limited to the time range of `options` and to traces that
    /// start in `window`, with the facts of those blocks.
    async fn scan(
        &self,
        options: &SearchOptions,
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
        if let Some(end) = options.end_unix_nano {
            builder = builder.filter(trace_start().lt_eq(lit(end)))?;
        }
        if let Some(start) = options.start_unix_nano {
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

    /// Runs `plan`, a plan over `blocks`, and returns its rows. Adds to `stats` the time
    /// to plan it physically and to run it, what its scan read, and one round. A failure
    /// caused by a missing or corrupt block names the block.
    pub(crate) async fn execute(
        &self,
        plan: &LogicalPlan,
        blocks: &[&(BlockMeta, Facts)],
        stats: &mut SearchStats,
    ) -> Result<Vec<RecordBatch>, EngineError> {
        let started = Instant::now();
        let physical = match self.ctx.state().create_physical_plan(plan).await {
            Ok(physical) => physical,
            Err(e) => return Err(self.diagnose(e, blocks).await),
        };
        let planned = Instant::now();
        stats.planning += planned - started;
        let batches = match collect(Arc::clone(&physical), self.ctx.task_ctx()).await {
            Ok(batches) => batches,
            Err(e) => return Err(self.diagnose(e, blocks).await),
        };
        stats.collect(&physical);
        stats.execution += planned.elapsed();
        stats.rounds += 1;
        Ok(batches)
    }

    /// The error of a failed run, or, if a block's data file is missing or corrupt,
    /// an error naming that block (DataFusion's own message does not).
    async fn diagnose(&self, e: DataFusionError, blocks: &[&(BlockMeta, Facts)]) -> EngineError {
        let error = EngineError::from(e);
        if matches!(error, EngineError::Execution(_)) {
            for (block, _) in blocks {
                if let Err(broken) = self.store.check_data(&block.id).await {
                    return EngineError::Store(broken);
                }
            }
        }
        error
    }

    /// Parses, validates and plans `query`.
    pub async fn plan(
        &self,
        query: &str,
        options: &SearchOptions,
    ) -> Result<(Query, SearchPlan), EngineError> {
        let parsed = parse(query)?;
        let blocks = self.select(options, Some(&parsed));
        let (scan, facts) = self.scan(options, &blocks, Window::ALL).await?;
        let plan = plan_search(&parsed, scan, &facts)?;
        Ok((parsed, plan))
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
    ) -> Result<(SearchResponse, SearchStats), EngineError> {
        let started = Instant::now();
        let io = self.store.io();
        let parsed = parse(query)?;
        let blocks = self.select(options, Some(&parsed));
        let parsing = started.elapsed();
        let mut stats = SearchStats {
            blocks: blocks.len() as u64,
            planning: parsing,
            ..SearchStats::default()
        };
        let mut assembler: Option<Assembler> = None;
        for window in Window::newest_first(&blocks, options.limit) {
            let round = Instant::now();
            let (scan, facts) = self.scan(options, &blocks, window).await?;
            let plan = plan_search(&parsed, scan, &facts)?;
            stats.planning += round.elapsed();
            let batches = self.execute(&plan.plan, &blocks, &mut stats).await?;
            let assembling = Instant::now();
            let assembler = assembler.get_or_insert_with(|| {
                Assembler::new(&plan, options.limit, options.spans_per_spanset)
            });
            for batch in &batches {
                assembler.push(batch)?;
            }
            stats.execution += assembling.elapsed();
            if assembler.trace_count() >= options.limit {
                break;
            }
        }
        stats.io = self.store.io().since(io);
        let (inspected_traces, traces) = match assembler {
            Some(a) => (a.trace_count() as u64, a.finish()),
            None => (0, Vec::new()),
        };
        let metrics = SearchMetrics {
            inspected_traces,
            inspected_bytes: stats.bytes_scanned,
            inspected_spans: stats.spans_scanned,
            total_blocks: blocks.len() as u64,
            total_block_bytes: blocks.iter().map(|(b, _)| b.bytes).sum(),
        };
        Ok((SearchResponse { traces, metrics }, stats))
    }

    /// The plans of `query`; for a metrics query, the plan of each metrics function
    /// over the store's whole time span, one after the other.
    pub async fn explain(&self, query: &str) -> Result<Explanation, EngineError> {
        let parsed = parse(query)?;
        let plans = if matches!(parsed.body, traceql_parser::ast::QueryBody::Metrics(_)) {
            self.metrics_plans(&parsed).await?
        } else {
            vec![self.plan(query, &SearchOptions::default()).await?.1.plan]
        };
        let state = self.ctx.state();
        let (mut logical, mut physical) = (Vec::new(), Vec::new());
        for plan in plans {
            logical.push(state.optimize(&plan)?.display_indent().to_string());
            let exec: Arc<dyn ExecutionPlan> = state.create_physical_plan(&plan).await?;
            physical.push(displayable(exec.as_ref()).indent(false).to_string());
        }
        Ok(Explanation {
            canonical: parsed.to_string(),
            ast: serde_json::to_string_pretty(&parsed).unwrap_or_default(),
            logical: logical.join("\n"),
            physical: physical.join("\n"),
        })
    }
}

impl Engine {
    /// Every span of the trace with id `trace_id` (hex, leading zeros optional), in
    /// stored order; empty if no block holds it.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<Span>, EngineError> {
        let id = parse_trace_id(trace_id).map_err(EngineError::InvalidInput)?;
        let options = SearchOptions::default();
        let selected = self.select(&options, None);
        let blocks: Vec<BlockMeta> = selected.iter().map(|(b, _)| b.clone()).collect();
        let (scan, _) = self.scan(&options, &selected, Window::ALL).await?;
        let plan = LogicalPlanBuilder::from(scan)
            .filter(col(c::TRACE_ID).eq(lit(ScalarValue::FixedSizeBinary(16, Some(id.to_vec())))))?
            .build()?;
        let batches = self
            .execute(&plan, &selected, &mut SearchStats::default())
            .await?;
        let typed = union_typed_columns(&blocks)?;
        let mut spans = Vec::new();
        for batch in &batches {
            decode_batch(batch, &typed, &mut spans)
                .map_err(|e| EngineError::Execution(DataFusionError::Execution(e.to_string())))?;
        }
        Ok(spans)
    }
}

/// A range of trace starts searched in one round: `[from, to)`, unbounded where `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    from: Option<u64>,
    to: Option<u64>,
}

impl Window {
    const ALL: Window = Window {
        from: None,
        to: None,
    };

    /// Whether a block may hold traces starting in the window.
    fn may_hold(&self, b: &BlockMeta) -> bool {
        self.from.is_none_or(|f| b.end_unix_nano >= f)
            && self.to.is_none_or(|t| b.start_unix_nano < t)
    }

    /// Windows of trace starts from the newest backwards, each eight times wider than
    /// the last: the first is sized to hold about `limit` × 2 traces at the blocks'
    /// average rate, the last is unbounded below. A search stops after the round in
    /// which it has `limit` traces: older windows cannot hold newer traces, so
    /// newest-first results stay exact while a small limit reads little.
    fn newest_first(blocks: &[&(BlockMeta, Facts)], limit: usize) -> impl Iterator<Item = Window> {
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
        let single = traces == 0 || limit as u64 >= traces / 2;
        let mut width =
            ((span as f64) * (limit.max(1) as f64 * 2.0) / traces.max(1) as f64).max(1.0) as u64;
        let mut to: Option<u64> = None;
        let mut done = blocks.is_empty();
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let from = newest.saturating_sub(width);
            let window = if single || from <= oldest {
                done = true;
                Window { from: None, to }
            } else {
                Window {
                    from: Some(from),
                    to,
                }
            };
            to = window.from;
            width = width.saturating_mul(8);
            Some(window)
        })
    }
}

/// Registers the span table of `store` as `name` in `ctx`, so an existing DataFusion
/// application can query spans with its own plans (or SQL, if it enables it).
pub async fn register(ctx: &SessionContext, name: &str, store: &Store) -> Result<(), EngineError> {
    let blocks = store.list_blocks().await?;
    let table = span_table(ctx, store, &blocks).await?;
    ctx.register_table(name, table)?;
    Ok(())
}

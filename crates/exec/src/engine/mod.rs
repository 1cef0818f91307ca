//! The engine core that search, metrics queries and trace lookups share: the blocks of
//! a store and their facts, choosing the blocks a query may need ([`TimeRange`] and
//! pruning), one scan of the span table over them, running a plan with statistics
//! ([`QueryStats`]) and naming the block that broke a failed run ([`EngineError`]).
//!
//! What runs on it lives beside it: [`crate::search`], [`crate::metrics`],
//! [`crate::trace`] and [`crate::explain`].

mod answer;
mod error;
mod execute;
mod memory;
mod rounds;
mod sample;
mod scan;
mod stats;

pub(crate) use answer::Answer;
pub use error::{EngineError, human_bytes};
pub use execute::RemoteMetrics;
pub use rounds::Order;
pub(crate) use rounds::Rounds;
pub use sample::Sample;
pub use scan::TimeRange;
pub(crate) use scan::{Window, search_of};
pub use stats::{QueryStats, Share};

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use traceql_format::block::BlockMeta;
use traceql_format::facts::Facts;
use traceql_format::schema::scope_prefix;
use traceql_parser::Query;
use traceql_planner::ops::planner::with_trace_operators;

use crate::source::Block;
use crate::store::{Listing, Store, StoreOptions, open_store};
use crate::table::{session_config, span_table};

/// Runs TraceQL over the blocks of a store.
pub struct Engine {
    pub(crate) store: Store,
    /// The store's blocks with their facts, shared by the engines made from this one
    /// with other live blocks.
    blocks: Arc<Vec<(Block, Facts)>>,
    /// Blocks held outside the store (a server's head of spans not yet written), read
    /// beside its blocks.
    live: Vec<(Block, Facts)>,
    skipped: Vec<String>,
    pub(crate) ctx: SessionContext,
    memory_limit: usize,
    query_memory_limit: Option<usize>,
}

/// How an engine runs queries.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The DataFusion session configuration (see [`session_config`]).
    pub session: SessionConfig,
    /// The most memory, in bytes, that the operators of the engine's queries may hold
    /// at once (aggregations, repartitioning, span-set operators); a query that needs
    /// more fails with [`EngineError::MemoryLimit`]. Results handed back are not
    /// counted.
    pub memory_limit: usize,
    /// The most memory, in bytes, that the operators of one query may hold, out of
    /// `memory_limit` (`None`: all of it). A server running several queries at once sets
    /// it, so that a query that needs too much fails alone with
    /// [`EngineError::MemoryLimit`] instead of starving the queries beside it.
    pub query_memory_limit: Option<usize>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            session: session_config(),
            memory_limit: default_memory_limit(),
            query_memory_limit: None,
        }
    }
}

/// The default memory limit: half of the machine's memory (4 GiB where it cannot be
/// read).
pub fn default_memory_limit() -> usize {
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        });
    match total_kib {
        Some(kib) => kib * 1024 / 2,
        None => 4 << 30,
    }
}

/// `blocks` with their facts: those of `known` blocks (by id) as they are, the others'
/// read from the block for the newest `FACTS_READ_BLOCKS` (a few at a time, so opening
/// a large bucket stays quick) and taken from `meta.json` for the rest.
async fn blocks_with_facts(
    store: &Store,
    blocks: Vec<Block>,
    known: &[(Block, Facts)],
) -> Vec<(Block, Facts)> {
    use futures::{FutureExt, StreamExt};
    let known: std::collections::HashMap<&str, &Facts> = known
        .iter()
        .map(|(b, f)| (b.meta().id.as_str(), f))
        .collect();
    let mut newest: Vec<usize> = (0..blocks.len()).collect();
    newest.sort_by_key(|&i| std::cmp::Reverse(blocks[i].meta().end_unix_nano));
    let mut read = vec![false; blocks.len()];
    for &i in newest.iter().take(FACTS_READ_BLOCKS) {
        read[i] = true;
    }
    // Boxed: a plain `map` over the blocks' iterator makes a future that rustc cannot
    // prove `Send` for every lifetime, which a server opening engines inside request
    // handlers needs.
    let reads: Vec<futures::future::BoxFuture<'_, (Block, Facts)>> = blocks
        .into_iter()
        .zip(read)
        .map(|(b, read)| match known.get(b.meta().id.as_str()) {
            Some(facts) => {
                let facts = (*facts).clone();
                async move { (b, facts) }.boxed()
            }
            None => facts_of(store, b, read).boxed(),
        })
        .collect();
    futures::stream::iter(reads).buffered(8).collect().await
}

/// Block `b` with its facts, read from the block if `read`.
async fn facts_of(store: &Store, b: Block, read: bool) -> (Block, Facts) {
    let facts = if read {
        b.load_facts(store).await
    } else {
        b.facts()
    };
    (b, facts)
}

/// How many bytes of Parquet footers and page indexes an engine keeps between queries:
/// an eighth of its memory limit, at least DataFusion's default of 50 MiB, so that a
/// long-lived engine (`traceql serve`) reads each block's footer once rather than once
/// per query once a store outgrows DataFusion's default.
fn metadata_cache_limit(memory_limit: usize) -> usize {
    (memory_limit / 8).max(50 << 20)
}

/// Parses `query` and checks that the engine can run it; errors keep the text for
/// rendering.
pub(crate) fn parse(query: &str) -> Result<Query, EngineError> {
    traceql_parser::parse(query)
        .and_then(|parsed| traceql_parser::check_supported(&parsed).map(|()| parsed))
        .map_err(|error| EngineError::Query {
            source: query.to_string(),
            error,
        })
}

/// A TraceQL query parsed and checked once (the engine can run it). A program that must
/// know what kind of query it holds parses it once with [`ParsedQuery::parse`] and hands
/// it to [`Engine::search_parsed`] or [`Engine::metrics_parsed`].
#[derive(Clone, Debug)]
pub struct ParsedQuery {
    query: Query,
}

impl ParsedQuery {
    /// Parses `text` and checks that the engine can run it; the error keeps the text
    /// for rendering its diagnostic.
    pub fn parse(text: &str) -> Result<ParsedQuery, EngineError> {
        Ok(ParsedQuery {
            query: parse(text)?,
        })
    }

    /// The syntax tree.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Whether it is a metrics query (`{ … } | rate()`), not a search.
    pub fn is_metrics(&self) -> bool {
        matches!(self.query.body, traceql_parser::ast::QueryBody::Metrics(_))
    }
}

/// How many blocks (the newest) an engine lets their kinds read facts of when it opens a
/// store ([`crate::source::BlockSource::load_facts`]); the others keep what their
/// descriptions say.
pub const FACTS_READ_BLOCKS: usize = 256;

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
        Engine::with_options(
            store,
            EngineOptions {
                session: config,
                ..EngineOptions::default()
            },
        )
        .await
    }

    /// An engine over `store` that runs queries as `options` say.
    pub async fn with_options(store: Store, options: EngineOptions) -> Result<Engine, EngineError> {
        let listing = store.list().await?;
        let blocks = blocks_with_facts(&store, listing.blocks, &[]).await;
        // A plain greedy pool: DataFusion's default wraps it in a consumer tracker that
        // takes a lock on every reservation change, which cost a full scan 10–25% here.
        let pool = GreedyMemoryPool::new(options.memory_limit);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_metadata_cache_limit(metadata_cache_limit(options.memory_limit))
            .build_arc()?;
        // Bloom filters read by the engine's scans, kept for its later queries.
        let session = options
            .session
            .with_extension(Arc::new(crate::source::BloomFilters::default()));
        // Only what traceql's plans need: they carry their functions with them, so the
        // session registers none of DataFusion's (about 1 ms of every process, a
        // tenth of a newest-20 search, went into registering them).
        let ctx = SessionContext::new_with_state(with_trace_operators(
            SessionStateBuilder::new()
                .with_config(session)
                .with_runtime_env(runtime)
                .build(),
        ));
        Ok(Engine {
            store,
            blocks: Arc::new(blocks),
            live: Vec::new(),
            skipped: listing.skipped,
            ctx,
            memory_limit: options.memory_limit,
            query_memory_limit: options.query_memory_limit,
        })
    }

    /// The engine over the store as it is now, if its blocks changed since this engine
    /// listed them (blocks added, compacted or deleted); `None` if they did not. The new
    /// engine shares this one's session — its memory pool and its cache of footers — and
    /// the facts of the blocks both know, so only new blocks are read. Queries running
    /// on this engine finish on the blocks it listed.
    pub async fn refreshed(&self) -> Result<Option<Engine>, EngineError> {
        let listing = self.store.list().await?;
        let ids = |blocks: &mut dyn Iterator<Item = &Block>| -> Vec<String> {
            blocks.map(|b| b.meta().id.clone()).collect()
        };
        if ids(&mut listing.blocks.iter()) == ids(&mut self.blocks.iter().map(|(b, _)| b)) {
            return Ok(None);
        }
        let mut engine = self.over(self.store.clone(), listing, &self.blocks).await;
        engine.live = self.live.clone();
        Ok(Some(engine))
    }

    /// An engine over `store` that shares this one's session: its memory pool (so the
    /// memory limit covers the queries of both), its caches of footers, page indexes and
    /// bloom filters, and its limits. For the other tenants of this engine's store.
    pub async fn sharing(&self, store: Store) -> Result<Engine, EngineError> {
        let listing = store.list().await?;
        Ok(self.over(store, listing, &[]).await)
    }

    /// An engine with this one's session over the blocks `listing` found in `store`,
    /// taking the facts of the `known` ones as they are.
    async fn over(&self, store: Store, listing: Listing, known: &[(Block, Facts)]) -> Engine {
        let blocks = blocks_with_facts(&store, listing.blocks, known).await;
        Engine {
            store,
            blocks: Arc::new(blocks),
            live: Vec::new(),
            skipped: listing.skipped,
            ctx: self.ctx.clone(),
            memory_limit: self.memory_limit,
            query_memory_limit: self.query_memory_limit,
        }
    }

    /// This engine with `live` in place of its live blocks: blocks held outside the
    /// store (a server's head of spans acknowledged but not yet written to it), which
    /// every query reads beside the store's blocks. It shares this engine's session and
    /// store blocks; [`Engine::refreshed`] keeps the live blocks.
    pub fn with_live(&self, live: Vec<Block>) -> Engine {
        Engine {
            store: self.store.clone(),
            blocks: Arc::clone(&self.blocks),
            live: live
                .into_iter()
                .map(|b| {
                    let facts = b.facts();
                    (b, facts)
                })
                .collect(),
            skipped: self.skipped.clone(),
            ctx: self.ctx.clone(),
            memory_limit: self.memory_limit,
            query_memory_limit: self.query_memory_limit,
        }
    }

    /// Every block a query may read: the store's, then the live ones.
    pub(crate) fn every_block(&self) -> impl Iterator<Item = &(Block, Facts)> {
        self.blocks.iter().chain(&self.live)
    }

    /// The store's location, for messages.
    pub fn store_name(&self) -> &str {
        self.store.display()
    }

    /// The descriptions of the blocks queries read: the store's, then the live ones.
    pub fn blocks(&self) -> impl Iterator<Item = &BlockMeta> {
        self.every_block().map(|(b, _)| b.meta())
    }

    /// Blocks of the store that are not read: blocks of versions this version does not
    /// read, as `<id> (<format>)`.
    pub fn skipped_blocks(&self) -> &[String] {
        &self.skipped
    }

    /// The attributes the blocks hold, as TraceQL names them (`resource.service.name`,
    /// `span.http.route`, `instrumentation.x`), sorted; for completion. Blocks that
    /// did not record their fallback keys contribute their typed columns only.
    pub fn attribute_names(&self) -> Vec<String> {
        let word = |scope| scope_prefix(scope).unwrap_or("");
        let mut names = std::collections::BTreeSet::new();
        for (_, facts) in self.every_block() {
            for t in &facts.typed {
                names.insert(format!("{}.{}", word(t.scope), t.key));
            }
            for (scope, key) in facts.fallback.iter().flatten() {
                names.insert(format!("{}.{key}", word(*scope)));
            }
        }
        names.into_iter().collect()
    }

    /// Values the blocks' dictionaries record for a string attribute or `name`
    /// (`resource.service.name`, `span.http.route`, `name`), sorted; for completion.
    pub fn known_values(&self, field: &str) -> Vec<String> {
        let mut values = std::collections::BTreeSet::new();
        for (_, facts) in self.every_block() {
            if let Some(v) = facts.dictionaries.get(field) {
                values.extend(v.iter().cloned());
            }
        }
        values.into_iter().collect()
    }

    /// The memory limit of the engine's queries, in bytes.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// The DataFusion session the engine runs in. It registers no SQL functions or
    /// table formats (its plans need none); an application that runs its own SQL
    /// registers the span table in a session of its own ([`register`]).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// This engine with its DataFusion session replaced by what `shape` makes of it: how
    /// an application changes the way the engine plans or runs its queries
    /// (traceql-cluster makes it plan them over workers). Engines made from this one
    /// keep the new session.
    pub fn with_session_state(
        mut self,
        shape: impl FnOnce(datafusion::execution::SessionState) -> datafusion::execution::SessionState,
    ) -> Engine {
        self.ctx = SessionContext::new_with_state(shape(self.ctx.state()));
        self
    }
}

/// Registers the span table of `store` as `name` in `ctx`, so an existing DataFusion
/// application can query spans with its own plans (or SQL, if it enables it).
pub async fn register(ctx: &SessionContext, name: &str, store: &Store) -> Result<(), EngineError> {
    let blocks = store.list().await?.blocks;
    let table = span_table(store, &blocks)?;
    ctx.register_table(name, table)?;
    Ok(())
}

//! Ingest: OTLP files → traces → blocks in a store, streaming in bounded memory.
//!
//! Input is read a request at a time, each request decoded into an arena of its own
//! (`traceql_format::arena`), and its spans wait in a [`buffer::TraceBuffer`], grouped
//! by trace as references into those arenas, until the memory budget says to write the
//! traces that start first; two other threads encode blocks meanwhile ([`pipeline`]),
//! their rows built from the arenas without the span model. Everything one ingest
//! writes is one store transaction: visible together at the end, or not at all.

pub(crate) mod buffer;
pub(crate) mod pipeline;
pub(crate) mod sorted;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use self::buffer::TraceBuffer;
use self::pipeline::{Feed, Feeder};
use self::sorted::{Sizes, write_sorted};
use crate::otlp::{InputError, read_file_streaming};
use crate::store::{Store, StoreError};
use traceql_format::FormatError;
use traceql_format::block::order::{BlockKey, block_key, in_block_order, into_blocks, sort_spans};
use traceql_format::block::{BlockOptions, RowGroupEncoder, choose_typed_columns, encode_block};
use traceql_format::model::Trace;

/// What ingest did.
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Files read.
    pub files: usize,
    /// Traces written (a trace written in parts counts once per block).
    pub traces: u64,
    /// Spans written.
    pub spans: u64,
    /// Blocks written.
    pub blocks: u64,
    /// Bytes of block data written.
    pub bytes: u64,
    /// Invalid records skipped (with `skip_invalid`).
    pub skipped: Vec<InputError>,
    /// Some traces may be in parts: the input outgrew the memory budget before all of
    /// it was read (`traceql compact` joins them).
    pub partial_traces: bool,
    /// Wall time.
    pub seconds: f64,
}

impl IngestReport {
    /// Counts a block written.
    pub fn add_block(&mut self, meta: &traceql_format::block::BlockMeta) {
        self.partial_traces |= meta.partial_traces;
        self.blocks += 1;
        self.traces += meta.traces;
        self.spans += meta.spans;
        self.bytes += meta.bytes;
    }

    /// The one-line summary printed at the end.
    pub fn summary(&self) -> String {
        let rate = if self.seconds > 0.0 {
            self.spans as f64 / self.seconds
        } else {
            0.0
        };
        let mut line = format!(
            "{} traces, {} spans, {} blocks, {} bytes in {:.2}s ({:.0} spans/s)",
            self.traces, self.spans, self.blocks, self.bytes, self.seconds, rate
        );
        if !self.skipped.is_empty() {
            line.push_str(&format!("; skipped {} invalid records", self.skipped.len()));
        }
        line
    }
}

/// Why ingest stopped.
#[derive(Debug)]
pub enum IngestError {
    /// Bad input; nothing was written.
    Input(InputError),
    /// The store failed.
    Store(StoreError),
    /// Encoding a block failed.
    Encode(FormatError),
    /// A worker thread failed (a bug: it names what happened).
    Internal(String),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Input(e) => write!(f, "{e}"),
            IngestError::Store(e) => write!(f, "{e}"),
            IngestError::Encode(e) => write!(f, "cannot encode block: {e}"),
            IngestError::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for IngestError {}

/// Progress of a long ingest, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    /// `done` of `total` inputs read (files, or generated traces).
    Read {
        /// Inputs read so far.
        done: usize,
        /// Inputs in all.
        total: usize,
    },
    /// `done` of `total` spans written (`total` 0 while not known).
    Write {
        /// Spans written so far.
        done: u64,
        /// Spans in all, 0 if not known yet.
        total: u64,
    },
}

/// How ingest runs.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// How blocks are cut and encoded.
    pub block: BlockOptions,
    /// About the most memory ingest holds: spans waiting for their block, and blocks
    /// being encoded. When the waiting spans reach a sixth of it, the half of the
    /// waiting traces that start first is written. A trace whose spans arrive farther
    /// apart than that is written in parts; the blocks say so, and `traceql compact`
    /// joins them.
    pub memory_limit: usize,
    /// Skip invalid records and report them, instead of stopping at the first.
    pub skip_invalid: bool,
}

/// The default [`IngestOptions::memory_limit`]: 1 GiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            block: BlockOptions::default(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            skip_invalid: false,
        }
    }
}

/// Reads OTLP `files` and writes their traces to `store`, in bounded memory (see
/// [`IngestOptions::memory_limit`]): one thread reads and groups spans by trace while
/// two others encode blocks. The blocks become visible together when all input has been
/// read; after bad input or a failure, none does (a killed ingest leaves hidden blocks
/// that the next ingest or compaction deletes).
pub async fn ingest_files(
    store: &Store,
    files: &[PathBuf],
    options: &IngestOptions,
    progress: &dyn Fn(Progress),
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let limits = Limits::of(options);
    let files_owned = files.to_vec();
    let skip_invalid = options.skip_invalid;
    let txn = pipeline::begin(store, "ingest").await?;
    let run = pipeline::run(store, txn, &[], options, progress, move |feed| {
        read_files(&files_owned, skip_invalid, limits, feed).map_err(IngestError::Input)
    });
    let (mut report, skipped) = run.await?;
    report.files = files.len();
    report.skipped = skipped;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes `count` traces that `next` makes to `store` in bounded memory, visible
/// together at the end, in blocks of the target size whatever the budget: they are
/// encoded a row group at a time, and their typed columns are chosen from the first
/// row group's traces. Blocks are named by `block_id`.
///
/// `next` gives a trace (complete) and a time before which no trace it makes later
/// starts: traces wait until that time passes their start, so that they are written in
/// block order even when they are made a little out of order.
pub async fn write_generated(
    store: &Store,
    count: usize,
    mut next: impl FnMut() -> (Trace, u64) + Send + 'static,
    options: &IngestOptions,
    block_id: impl FnMut() -> String + Send + 'static,
    progress: &dyn Fn(Progress),
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let sizes = Sizes::of(options);
    let block = options.block.clone();
    let txn = pipeline::begin(store, "gen").await?;
    let run = pipeline::run(store, txn, &[], options, progress, move |feed| {
        // Generated traces are whole.
        if !feed.send(Feed::Drain) {
            return Ok(());
        }
        let (mut first, mut untils) = (Vec::new(), Vec::new());
        let mut spans = 0;
        while first.len() < count && spans < sizes.row_group_spans {
            let (mut trace, until) = next();
            sort_spans(&mut trace);
            spans += trace.len();
            first.push(trace);
            untils.push(until);
        }
        let encoder =
            RowGroupEncoder::new(choose_typed_columns(&first, &block), sizes.row_group_spans)
                .map_err(IngestError::Encode)?;
        let mut made = first.len();
        let mut first = first.into_iter().zip(untils);
        let step = (count / 100).max(1);
        // Traces by block order, until no later trace can start before them.
        let mut waiting: BTreeMap<BlockKey, Trace> = BTreeMap::new();
        let traces = std::iter::from_fn(move || {
            loop {
                let until = match first.next() {
                    Some((trace, until)) => {
                        waiting.insert(block_key(&trace), trace);
                        until
                    }
                    None if made < count => {
                        let (mut trace, until) = next();
                        sort_spans(&mut trace);
                        waiting.insert(block_key(&trace), trace);
                        made += 1;
                        if made % step == 0 || made == count {
                            feed.send(Feed::Read {
                                done: made,
                                total: count,
                            });
                        }
                        until
                    }
                    None => u64::MAX,
                };
                let ready = waiting
                    .first_key_value()
                    .is_some_and(|((start, _), _)| *start < until);
                if ready || waiting.is_empty() {
                    return waiting.pop_first().map(|(_, trace)| Ok(trace));
                }
            }
        });
        write_sorted(feed, &encoder, sizes, block_id, traces)
    });
    let (mut report, ()) = run.await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// How much ingest buffers before writing, and how much it writes at a time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Spans waiting for their block, in bytes, before those that start first are
    /// written.
    pub(crate) buffer: usize,
    /// Spans handed to the encoder at a time, in bytes.
    pub(crate) chunk: usize,
    /// Traces whose ids are remembered once written, to tell whether any trace was
    /// written in parts: a sixteenth of the budget, at about 16 bytes each (4M traces
    /// in 1 GiB).
    pub(crate) remember: usize,
}

impl Limits {
    /// A sixth of the budget waits (the arenas of the waiting spans); a twelfth is
    /// queued for the encoder and two twelfths are encoded at a time, each a row group
    /// of at most a tenth of the budget at a time (the Arrow rows built from the
    /// arenas, the Parquet pages), leaving room for the input being decoded, memory the
    /// allocator has yet to give back, and the process itself. Measured at 1x (1M
    /// spans, 1 GiB budget): peaks of 662–828 MB (docs/performance.md).
    pub(crate) fn of(options: &IngestOptions) -> Limits {
        let limit = options.memory_limit.max(12);
        Limits {
            buffer: limit / 6,
            chunk: limit / 12,
            remember: limit / 16 / 16,
        }
    }
}

/// Reads `files` into the feed: spans grouped by trace, the traces that start first
/// sent on when the buffer is full, the rest at the end; then, if some trace was
/// written in parts (its spans arrived after it was sent on), says so
/// ([`Feed::Split`]).
fn read_files(
    files: &[PathBuf],
    skip_invalid: bool,
    limits: Limits,
    feed: &Feeder,
) -> Result<Vec<InputError>, InputError> {
    let mut buffer = TraceBuffer::new(limits.remember);
    let mut skipped = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mut open = true;
        skipped.extend(read_file_streaming(file, skip_invalid, &mut |request| {
            buffer.push(request);
            while open && buffer.bytes() >= limits.buffer {
                open = feed.send(Feed::Arena(buffer.take_first(limits.chunk)));
            }
            open
        })?);
        if !open
            || !feed.send(Feed::Read {
                done: i + 1,
                total: files.len(),
            })
        {
            return Ok(skipped);
        }
    }
    if !feed.send(Feed::Drain) {
        return Ok(skipped);
    }
    while !buffer.is_empty() {
        if !feed.send(Feed::Arena(buffer.take_first(limits.chunk))) {
            return Ok(skipped);
        }
    }
    if buffer.split() {
        feed.send(Feed::Split);
    }
    Ok(skipped)
}

/// Writes traces to `store` in order of trace start (then trace id), cutting blocks at
/// trace boundaries, so each block covers a stretch of time; each block is visible as
/// soon as it is written. Each trace's spans are sorted by start time (then span id)
/// first. (For input larger than memory, see [`ingest_files`].)
pub async fn write_traces(
    store: &Store,
    traces: impl IntoIterator<Item = Trace>,
    options: &BlockOptions,
    mut block_id: impl FnMut() -> String,
    progress: &dyn Fn(Progress),
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let mut traces: Vec<Trace> = traces.into_iter().collect();
    in_block_order(&mut traces);
    let total: u64 = traces.iter().map(|t| t.len() as u64).sum();
    let mut report = IngestReport::default();
    for block in into_blocks(traces, options.spans_per_block) {
        let encoded = encode_block(&block_id(), &block, options).map_err(IngestError::Encode)?;
        store
            .write_block(&encoded)
            .await
            .map_err(IngestError::Store)?;
        report.add_block(&encoded.meta);
        progress(Progress::Write {
            done: report.spans,
            total,
        });
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

//! Writes traces that arrive in block order (whole, by trace start, then trace id) as
//! blocks of any size in bounded memory: they are cut into row groups, which
//! [`ENCODERS`] threads encode at once, and a third appends them, in order, to the
//! block being written, handing each block on when it reaches its size. At most
//! [`ENCODERS`]` + 1` row groups are held at a time, however large the blocks.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use traceql_format::FormatError;
use traceql_format::block::{BlockWriter, EncodedRowGroup, RowGroupEncoder};
use traceql_format::model::Trace;

use super::pipeline::{Feed, Feeder};
use super::{IngestError, IngestOptions};
use traceql_format::block::order::block_key;

/// Row groups encoded at once.
const ENCODERS: usize = 2;

/// Bytes of memory a decoded span takes, about (what the ingest buffer counts for
/// typical spans, rounded up), for sizing work before any span is read.
pub(crate) const SPAN_BYTES: u64 = 1024;

/// How [`write_sorted`] cuts blocks and row groups.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    /// Spans per block: a block ends with the first row group that reaches it.
    pub block_spans: usize,
    /// Spans per row group: a row group ends with the first trace that reaches it.
    pub row_group_spans: usize,
}

impl Sizes {
    /// Blocks of the target size of `options`, and row groups of their size or fewer
    /// spans when the row groups in flight would not fit a tenth of the budget each.
    pub(crate) fn of(options: &IngestOptions) -> Sizes {
        let limit = options.memory_limit.max(10) as u64;
        Sizes {
            block_spans: options.block.spans_per_block.max(1),
            row_group_spans: options
                .block
                .spans_per_row_group
                .min((limit / 10 / SPAN_BYTES) as usize)
                .max(1),
        }
    }
}

/// A row group to encode: the `index`th of the input.
struct Job {
    index: usize,
    /// Empty only when it closes a block without adding to it.
    traces: Vec<Trace>,
    /// The block ends with this row group.
    ends_block: bool,
}

/// What an encoder made of a [`Job`].
type Encoded = (usize, bool, Result<Option<EncodedRowGroup>, FormatError>);

/// Writes `traces` (whole, in block order, with the typed columns of `encoder`) as
/// blocks of `sizes`, named by `block_id`, through `feed`. Stops early, without error, when the writer on the
/// other end of `feed` has stopped (it reports why).
pub(crate) fn write_sorted(
    feed: &Feeder,
    encoder: &RowGroupEncoder,
    sizes: Sizes,
    block_id: impl FnMut() -> String + Send,
    traces: impl Iterator<Item = Result<Trace, IngestError>>,
) -> Result<(), IngestError> {
    std::thread::scope(|scope| {
        // A rendezvous: a row group is handed over only when an encoder is free.
        let (jobs, waiting) = sync_channel::<Job>(0);
        let waiting = Arc::new(Mutex::new(waiting));
        let (encoded, done) = channel::<Encoded>();
        for _ in 0..ENCODERS {
            let waiting = Arc::clone(&waiting);
            let encoded = encoded.clone();
            scope.spawn(move || encode(encoder, &waiting, &encoded));
        }
        // Only the encoders hold the receiving end: once they stop, handing over fails.
        drop(waiting);
        drop(encoded);
        let appender = scope.spawn(move || append(feed, encoder, block_id, done));
        let cut = cut(traces, sizes, &jobs);
        drop(jobs);
        let appended = appender
            .join()
            .map_err(|_| IngestError::Internal("the block-appending thread panicked".into()))?;
        cut.and(appended)
    })
}

/// Cuts `traces` into row groups and blocks of `sizes`, handing each row group to
/// `jobs`; stops when nobody takes them any more.
fn cut(
    traces: impl Iterator<Item = Result<Trace, IngestError>>,
    sizes: Sizes,
    jobs: &SyncSender<Job>,
) -> Result<(), IngestError> {
    let mut index = 0;
    let mut row_group = Vec::new();
    let (mut group_spans, mut block_spans) = (0, 0);
    let mut hand_over = |traces: Vec<Trace>, ends_block: bool| {
        let job = Job {
            index,
            traces,
            ends_block,
        };
        index += 1;
        jobs.send(job).is_ok()
    };
    let mut last = None;
    for trace in traces {
        let trace = trace?;
        // A block that claims an order it does not have would mislead every reader.
        let key = block_key(&trace);
        if last.is_some_and(|last| key < last) {
            return Err(IngestError::Internal(
                "traces reached the block writer out of block order".into(),
            ));
        }
        last = Some(key);
        group_spans += trace.len();
        row_group.push(trace);
        if group_spans >= sizes.row_group_spans {
            block_spans += group_spans;
            let ends_block = block_spans >= sizes.block_spans;
            if !hand_over(std::mem::take(&mut row_group), ends_block) {
                return Ok(());
            }
            group_spans = 0;
            if ends_block {
                block_spans = 0;
            }
        }
    }
    // Spans handed over since the last block ended leave a block open.
    if !row_group.is_empty() || block_spans > 0 {
        hand_over(row_group, true);
    }
    Ok(())
}

/// Encodes the row groups waiting in `waiting` until there are no more, or nobody
/// takes what it made.
fn encode(encoder: &RowGroupEncoder, waiting: &Mutex<Receiver<Job>>, encoded: &Sender) {
    loop {
        let job = match waiting.lock() {
            Ok(waiting) => waiting.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let made = if job.traces.is_empty() {
            Ok(None)
        } else {
            encoder.encode(&job.traces).map(Some)
        };
        drop(job.traces);
        if encoded.send((job.index, job.ends_block, made)).is_err() {
            return;
        }
    }
}

type Sender = std::sync::mpsc::Sender<Encoded>;

/// Appends the encoded row groups, in the order they were cut, to blocks, and hands
/// each finished block to `feed`.
fn append(
    feed: &Feeder,
    encoder: &RowGroupEncoder,
    mut block_id: impl FnMut() -> String,
    done: Receiver<Encoded>,
) -> Result<(), IngestError> {
    let mut arrived = BTreeMap::new();
    let mut next = 0;
    let mut block: Option<BlockWriter> = None;
    for (index, ends_block, made) in done {
        arrived.insert(index, (ends_block, made));
        while let Some((ends_block, made)) = arrived.remove(&next) {
            next += 1;
            if let Some(row_group) = made.map_err(IngestError::Encode)? {
                let writer = match &mut block {
                    Some(writer) => writer,
                    None => block.insert(
                        BlockWriter::new(&block_id(), encoder).map_err(IngestError::Encode)?,
                    ),
                };
                writer.append(row_group).map_err(IngestError::Encode)?;
            }
            if ends_block && let Some(writer) = block.take() {
                let encoded = writer.finish().map_err(IngestError::Encode)?;
                if !feed.send(Feed::Block(Box::new(encoded))) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

//! The two stages of a bounded-memory write: a producer thread (reading input,
//! generating traces, reading blocks to compact) feeds chunks of traces, or blocks it
//! encoded itself ([`super::sorted`]), through a channel of one slot to the writer,
//! which encodes the chunks as blocks on other threads and writes every block in one
//! store transaction, committed when the producer is done and rolled back if either
//! fails.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use traceql_format::arena::ArenaTraces;
use traceql_format::block::{BlockMeta, EncodedBlock, encode_arena_block};

use super::sorted::Sizes;
use super::{IngestError, IngestOptions, IngestReport, Progress};
use crate::store::{Store, TIDY_GRACE, Txn, new_block_id};

/// What the producer hands on.
pub(crate) enum Feed {
    /// Traces to write (each trace's spans together), in block order.
    Arena(ArenaTraces),
    /// A block the producer encoded itself (of whole traces), to write as it is.
    Block(Box<EncodedBlock>),
    /// From here on every block fed ([`Feed::Block`]) holds whole traces: the producer
    /// never splits traces. Blocks fed before it are marked as holding traces in parts.
    Drain,
    /// Some trace of the traces fed ([`Feed::Arena`]) was fed in parts: every block of
    /// the write is marked as holding traces in parts (`traceql compact` joins them).
    /// Without it, the traces fed are whole.
    Split,
    /// Progress of the producer: `done` of `total` inputs.
    Read {
        /// Inputs done.
        done: usize,
        /// Inputs in all.
        total: usize,
    },
}

/// The producer's end of the channel.
pub(crate) struct Feeder {
    tx: mpsc::Sender<Feed>,
}

impl Feeder {
    /// Hands `feed` on, waiting while the writer is busy; false once the writer has
    /// stopped (it failed), when the producer should stop too.
    pub(crate) fn send(&self, feed: Feed) -> bool {
        self.tx.blocking_send(feed).is_ok()
    }
}

/// Runs `produce` on a thread of its own and writes what it feeds as blocks of `txn`,
/// then commits `txn`, replacing the blocks `replaces` names; on any failure, rolls it
/// back. Returns the report and what the producer returned.
pub(crate) async fn run<F, T>(
    store: &Store,
    mut txn: Txn,
    replaces: &[String],
    options: &IngestOptions,
    progress: &dyn Fn(Progress),
    produce: F,
) -> Result<(IngestReport, T), IngestError>
where
    F: FnOnce(&Feeder) -> Result<T, IngestError> + Send + 'static,
    T: Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(1);
    let producer = tokio::task::spawn_blocking(move || produce(&Feeder { tx }));
    let written = write(store, &mut txn, &mut rx, options, progress).await;
    // A producer waiting to send stops once the channel is gone.
    drop(rx);
    let produced = producer
        .await
        .map_err(|e| IngestError::Internal(format!("the reading thread failed: {e}")));
    let failure = match (produced, written) {
        (Ok(Ok(made)), Ok(report)) => {
            store
                .commit(txn, replaces)
                .await
                .map_err(IngestError::Store)?;
            return Ok((report, made));
        }
        (Ok(Err(e)), _) | (Err(e), _) | (_, Err(e)) => e,
    };
    // Best effort: what is left is invisible, and the next run deletes it.
    let _ = store.abort(txn).await;
    Err(failure)
}

/// Begins a transaction of kind `kind` on `store`, after deleting what killed runs
/// left (it is invisible, but takes room).
pub(crate) async fn begin(store: &Store, kind: &str) -> Result<Txn, IngestError> {
    store.tidy(TIDY_GRACE).await.map_err(IngestError::Store)?;
    store.begin(kind).await.map_err(IngestError::Store)
}

/// Blocks encoded at once: with the producer, more threads than the machine's two
/// cores, so the encoder keeps up when reading is the cheaper stage (protobuf).
const ENCODING: usize = 2;

/// Encodes and writes what the producer feeds, as blocks of `txn`, [`ENCODING`] at a
/// time.
async fn write(
    store: &Store,
    txn: &mut Txn,
    rx: &mut mpsc::Receiver<Feed>,
    options: &IngestOptions,
    progress: &dyn Fn(Progress),
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport::default();
    let mut encoding = VecDeque::new();
    let mut draining = false;
    // Some trace was fed in parts: every block is marked, those written already too.
    let mut split = false;
    // What the blocks written say of themselves, to mark them on a split.
    let mut written = Vec::new();
    while let Some(feed) = rx.recv().await {
        match feed {
            Feed::Read { done, total } => {
                progress(Progress::Read { done, total });
            }
            Feed::Drain => {
                draining = true;
            }
            Feed::Split => {
                split = true;
            }
            Feed::Block(mut block) => {
                block.meta.partial_traces |= !draining;
                store_encoded(store, txn, *block, &mut report, &mut written, progress).await?;
            }
            Feed::Arena(traces) => {
                // Written as whole; marked at the end if a split follows.
                let traces = Arc::new(traces);
                for block in traces.blocks(options.block.spans_per_block) {
                    let (id, traces) = (new_block_id(), Arc::clone(&traces));
                    let mut block_options = options.block.clone();
                    // Row groups each within a tenth of the budget, as they are built.
                    block_options.spans_per_row_group = Sizes::of(options).row_group_spans;
                    encoding.push_back(tokio::task::spawn_blocking(move || {
                        encode_arena_block(&id, &traces, block, &block_options)
                    }));
                    while encoding.len() >= ENCODING {
                        let next = encoding.pop_front().expect("not empty");
                        store_block(store, txn, next, &mut report, &mut written, progress).await?;
                    }
                }
            }
        }
    }
    while let Some(next) = encoding.pop_front() {
        store_block(store, txn, next, &mut report, &mut written, progress).await?;
    }
    if split {
        report.partial_traces = true;
        for mut meta in written.into_iter().filter(|m| !m.partial_traces) {
            meta.partial_traces = true;
            store
                .rewrite_meta(&meta)
                .await
                .map_err(IngestError::Store)?;
        }
    }
    Ok(report)
}

/// Waits for a block being encoded and writes it as part of `txn`.
async fn store_block(
    store: &Store,
    txn: &mut Txn,
    encoding: JoinHandle<Result<EncodedBlock, traceql_format::FormatError>>,
    report: &mut IngestReport,
    written: &mut Vec<BlockMeta>,
    progress: &dyn Fn(Progress),
) -> Result<(), IngestError> {
    let encoded = encoding
        .await
        .map_err(|e| IngestError::Internal(format!("the encoding thread failed: {e}")))?
        .map_err(IngestError::Encode)?;
    store_encoded(store, txn, encoded, report, written, progress).await
}

/// Writes the encoded block `encoded` as part of `txn`, and what it says of itself
/// to `written`.
async fn store_encoded(
    store: &Store,
    txn: &mut Txn,
    mut encoded: EncodedBlock,
    report: &mut IngestReport,
    written: &mut Vec<BlockMeta>,
    progress: &dyn Fn(Progress),
) -> Result<(), IngestError> {
    store
        .write_txn_block(txn, &mut encoded)
        .await
        .map_err(IngestError::Store)?;
    report.add_block(&encoded.meta);
    written.push(encoded.meta);
    progress(Progress::Write {
        done: report.spans,
        total: 0,
    });
    Ok(())
}

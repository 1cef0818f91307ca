//! Writing head blocks to the store: one transaction whose blocks carry the log's mark
//! (the last record they hold), so that a server restarted after the commit replays
//! none of their records, and one restarted before it replays them all.

use std::collections::BTreeMap;
use std::sync::Arc;

use traceql_exec::ingest::IngestError;
use traceql_exec::source::BlockSource;
use traceql_exec::store::{Store, Txn, new_block_id};
use traceql_format::FormatError;
use traceql_format::block::{BlockOptions, BlockWriter, EncodedBlock, RowGroupEncoder};

use crate::head::HeadBlock;

/// What a flush wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Blocks written.
    pub blocks: usize,
    /// Traces written (a trace in several blocks counts once per block).
    pub traces: u64,
    /// Spans written.
    pub spans: u64,
    /// The last log record the blocks hold.
    pub through: u64,
}

/// Writes `blocks` to `store`, each as a block of its own made of the rows and the
/// description it already has (no trace is turned into rows again), marked as holding
/// the records of log `log` through the last of theirs, in a transaction that the caller
/// commits (they are invisible until then; see [`Store::commit`]) or aborts. The blocks
/// are marked as holding traces in parts: a trace may have spans in several head blocks,
/// or later spans still to arrive; compaction joins the parts.
pub async fn write(
    store: &Store,
    log: &str,
    blocks: &[Arc<HeadBlock>],
    options: &BlockOptions,
) -> Result<(Txn, Flushed), IngestError> {
    let mut flushed = Flushed {
        through: blocks.iter().map(|b| b.records().1).max().unwrap_or(0),
        ..Flushed::default()
    };
    let (owned, options) = (blocks.to_vec(), options.clone());
    let encoded = tokio::task::spawn_blocking(move || {
        owned
            .iter()
            .map(|block| encode(block, &options))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| IngestError::Internal(format!("the encoding thread failed: {e}")))?
    .map_err(IngestError::Encode)?;
    let mut txn = store.begin("flush").await.map_err(IngestError::Store)?;
    txn.mark(&BTreeMap::from([(log.to_string(), flushed.through)]));
    for mut block in encoded {
        block.meta.partial_traces = true;
        if let Err(e) = store.write_txn_block(&mut txn, &mut block).await {
            // Best effort: what is left is invisible, and the next tidy deletes it.
            let _ = store.abort(txn).await;
            return Err(IngestError::Store(e));
        }
        flushed.blocks += 1;
        flushed.traces += block.meta.traces;
        flushed.spans += block.meta.spans;
    }
    Ok((txn, flushed))
}

/// Threads a block's row groups are encoded on.
const ENCODERS: usize = 2;

/// The head block `block` encoded as a stored block, its row groups encoded
/// [`ENCODERS`] at a time and written in order.
fn encode(block: &HeadBlock, options: &BlockOptions) -> Result<EncodedBlock, FormatError> {
    let meta = block.meta();
    let row_group_spans = options.spans_per_row_group.max(1);
    let encoder = RowGroupEncoder::new(
        meta.typed_columns.clone(),
        (meta.spans as usize).clamp(1, row_group_spans),
    )?;
    let mut writer = BlockWriter::new(&new_block_id(), &encoder)?;
    let groups = block.row_groups(row_group_spans);
    for wave in groups.chunks(ENCODERS) {
        let encoded: Vec<Result<_, FormatError>> = std::thread::scope(|scope| {
            let running: Vec<_> = wave
                .iter()
                .map(|rows| {
                    let encoder = encoder.clone();
                    scope.spawn(move || encoder.encode_rows(rows))
                })
                .collect();
            running
                .into_iter()
                .map(|r| {
                    r.join().unwrap_or_else(|_| {
                        Err(FormatError::Encode("an encoding thread failed".into()))
                    })
                })
                .collect()
        });
        for row_group in encoded {
            writer.append(row_group?)?;
        }
    }
    writer.finish_described(meta)
}

/// The highest mark of log `log` that the blocks of `store` carry: the last of its
/// records already in the store.
pub async fn stored_mark(store: &Store, log: &str) -> Result<Option<u64>, IngestError> {
    let listing = store.list().await.map_err(IngestError::Store)?;
    Ok(listing
        .blocks
        .iter()
        .filter_map(|b| b.meta().wal_marks.get(log).copied())
        .max())
}

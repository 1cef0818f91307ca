//! Rewriting blocks of other kinds (Grafana Tempo's) as traceql blocks
//! (`traceql convert`), for users who want traceql's layout (typed attribute columns,
//! time-sorted rows, statistics) on their history.
//!
//! Each block that compaction cannot rewrite (see [`crate::source::Layout`]) is read
//! through its scan, a few traces at a time, and its traces are written out in chunks
//! of about [`BlockOptions::spans_per_block`] spans, so memory holds one output block at
//! a time, whatever the size of the input. The whole conversion is one transaction of
//! the target store: a failure or a kill leaves it as it was. Each output block records
//! the block it came from (`source_block`), and converting again replaces the blocks of
//! the earlier conversion of the same source in the same step, so nothing is doubled.

use std::time::Instant;

use datafusion::error::DataFusionError;
use futures::TryStreamExt;
use traceql_format::block::{BlockOptions, encode_block};
use traceql_format::model::Trace;

use crate::ingest::{IngestError, IngestReport};
use crate::source::{Block, read_traces};
use crate::store::{Store, StoreError, Txn, new_block_id};
use traceql_format::block::order::{in_block_order, into_blocks};

/// What a conversion did.
#[derive(Debug, Default)]
pub struct ConvertReport {
    /// Blocks read and converted.
    pub converted_blocks: usize,
    /// Blocks of the source left alone: traceql's own.
    pub other_blocks: usize,
    /// Blocks of an earlier conversion of the same sources that the new ones replace.
    pub replaced_blocks: usize,
    /// What was written.
    pub written: IngestReport,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Why a conversion stopped. Nothing it wrote is visible.
#[derive(Debug)]
pub enum ConvertError {
    /// The source or target store failed (listing, reading descriptions, committing).
    Store(StoreError),
    /// The source holds no block to convert.
    NothingToConvert {
        /// The source store, for the message.
        store: String,
        /// Its tenant.
        tenant: String,
    },
    /// A block could not be read.
    Read {
        /// The block's id.
        block: String,
        /// What failed.
        error: DataFusionError,
    },
    /// Writing failed.
    Write(IngestError),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::Store(e) => write!(f, "{e}"),
            ConvertError::NothingToConvert { store, tenant } => write!(
                f,
                "{store} (tenant {tenant}) holds no Tempo blocks (nor any other kind that \
                 traceql convert rewrites)"
            ),
            ConvertError::Read { block, error } => {
                write!(f, "cannot read block {block}: {}", error.message())
            }
            ConvertError::Write(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConvertError {}

/// How far a conversion got: `block` of `blocks` blocks to convert, `spans` written so
/// far.
#[derive(Clone, Copy, Debug)]
pub struct ConvertProgress {
    /// The block being read (1-based).
    pub block: usize,
    /// Blocks to convert in all.
    pub blocks: usize,
    /// Spans written so far.
    pub spans: u64,
}

/// Rewrites every block of `from` that compaction cannot rewrite (Tempo's) as traceql
/// blocks in `to`, in one transaction of `to`.
pub async fn convert(
    from: &Store,
    to: &Store,
    options: &BlockOptions,
    progress: &dyn Fn(ConvertProgress),
) -> Result<ConvertReport, ConvertError> {
    let started = Instant::now();
    let listing = from.list().await.map_err(ConvertError::Store)?;
    let (sources, other): (Vec<Block>, Vec<Block>) = listing
        .blocks
        .into_iter()
        .partition(|b| !b.layout().compactable);
    if sources.is_empty() {
        return Err(ConvertError::NothingToConvert {
            store: from.display().to_string(),
            tenant: from.tenant().to_string(),
        });
    }
    let mut report = ConvertReport {
        converted_blocks: sources.len(),
        other_blocks: other.len(),
        ..ConvertReport::default()
    };
    // Blocks an earlier conversion of these sources wrote, replaced in the same step.
    let converted: std::collections::HashSet<&str> =
        sources.iter().map(|b| b.meta().id.as_str()).collect();
    let replaces: Vec<String> = to
        .list_blocks()
        .await
        .map_err(ConvertError::Store)?
        .into_iter()
        .filter(|b| {
            b.source_block
                .as_deref()
                .is_some_and(|s| converted.contains(s))
        })
        .map(|b| b.id)
        .collect();
    report.replaced_blocks = replaces.len();
    let mut txn = to.begin("convert").await.map_err(ConvertError::Store)?;
    let written = write_all(from, to, &sources, options, &mut txn, &mut report, progress).await;
    if let Err(e) = written {
        // Nothing of it is visible; what cannot be deleted now, the next tidy deletes.
        let _ = to.abort(txn).await;
        return Err(e);
    }
    to.commit(txn, &replaces)
        .await
        .map_err(ConvertError::Store)?;
    report.seconds = started.elapsed().as_secs_f64();
    report.written.seconds = report.seconds;
    Ok(report)
}

/// Writes the traces of every block of `sources` to `to` as part of `txn`.
async fn write_all(
    from: &Store,
    to: &Store,
    sources: &[Block],
    options: &BlockOptions,
    txn: &mut Txn,
    report: &mut ConvertReport,
    progress: &dyn Fn(ConvertProgress),
) -> Result<(), ConvertError> {
    for (i, block) in sources.iter().enumerate() {
        let id = &block.meta().id;
        let mut chunk = Chunk::new(id, options);
        let mut traces = std::pin::pin!(read_traces(from, block));
        while let Some(batch) = traces
            .try_next()
            .await
            .map_err(|error| ConvertError::Read {
                block: id.clone(),
                error,
            })?
        {
            for trace in batch {
                if chunk.push(trace) {
                    chunk.write(to, txn, &mut report.written).await?;
                }
            }
            progress(ConvertProgress {
                block: i + 1,
                blocks: sources.len(),
                spans: report.written.spans,
            });
        }
        chunk.write(to, txn, &mut report.written).await?;
    }
    Ok(())
}

/// The traces of one output block in the making.
struct Chunk<'a> {
    source: &'a str,
    options: &'a BlockOptions,
    traces: Vec<Trace>,
    spans: usize,
}

impl<'a> Chunk<'a> {
    fn new(source: &'a str, options: &'a BlockOptions) -> Self {
        Chunk {
            source,
            options,
            traces: Vec::new(),
            spans: 0,
        }
    }

    /// Adds a trace; whether the chunk is now full.
    fn push(&mut self, trace: Trace) -> bool {
        self.spans += trace.len();
        self.traces.push(trace);
        self.spans >= self.options.spans_per_block
    }

    /// Writes the chunk as one block (if it holds anything) in `txn`, and starts the
    /// next.
    async fn write(
        &mut self,
        to: &Store,
        txn: &mut Txn,
        report: &mut IngestReport,
    ) -> Result<(), ConvertError> {
        let mut traces = std::mem::take(&mut self.traces);
        self.spans = 0;
        if traces.is_empty() {
            return Ok(());
        }
        in_block_order(&mut traces);
        // One chunk, one block: the options' block size is already honoured here.
        for traces in into_blocks(traces, usize::MAX) {
            let mut block = encode_block(&new_block_id(), &traces, self.options)
                .map_err(|e| ConvertError::Write(IngestError::Encode(e)))?;
            block.meta.source_block = Some(self.source.to_string());
            to.write_txn_block(txn, &mut block)
                .await
                .map_err(|e| ConvertError::Write(IngestError::Store(e)))?;
            report.add_block(&block.meta);
        }
        Ok(())
    }
}

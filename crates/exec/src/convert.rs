//! Rewriting Grafana Tempo's blocks as traceql blocks (`traceql convert`), for users
//! who want traceql's layout (typed attribute columns, time-sorted rows, statistics) on
//! their history.
//!
//! Each Tempo block is read row group by row group, a few traces at a time, and its
//! traces are written out in chunks of about [`BlockOptions::spans_per_block`] spans,
//! so memory holds one output block at a time, whatever the size of the input. A Tempo
//! row is a whole trace, so traces stay whole. Output block ids are derived from the
//! Tempo block's id and the chunk's number: converting again rewrites the same blocks
//! instead of adding copies.

use std::time::Instant;

use futures::TryStreamExt;
use traceql_format::block::{BlockMeta, BlockOptions};
use traceql_format::model::Trace;

use crate::ingest::{IngestError, IngestReport, Progress, write_traces};
use crate::store::Store;
use crate::table::tempo::{read_traces, tempo_parts};

/// What a conversion did.
#[derive(Debug, Default)]
pub struct ConvertReport {
    /// Tempo blocks read.
    pub tempo_blocks: usize,
    /// Blocks of the source that are not Tempo's, left alone.
    pub other_blocks: usize,
    /// What was written.
    pub written: IngestReport,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Why a conversion stopped. Blocks written before are complete and readable.
#[derive(Debug)]
pub enum ConvertError {
    /// A Tempo block could not be read.
    Read(String),
    /// Writing failed.
    Write(IngestError),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::Read(e) => f.write_str(e),
            ConvertError::Write(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConvertError {}

/// How far a conversion got: `block` of `blocks` Tempo blocks, `spans` written so far.
#[derive(Clone, Copy, Debug)]
pub struct ConvertProgress {
    /// The Tempo block being read (1-based).
    pub block: usize,
    /// Tempo blocks in all.
    pub blocks: usize,
    /// Spans written so far.
    pub spans: u64,
}

/// Rewrites every Tempo block of `from` as traceql blocks in `to`.
pub async fn convert(
    from: &Store,
    to: &Store,
    options: &BlockOptions,
    progress: &dyn Fn(ConvertProgress),
) -> Result<ConvertReport, ConvertError> {
    let started = Instant::now();
    let listing = from
        .list()
        .await
        .map_err(|e| ConvertError::Read(e.to_string()))?;
    let (tempo, other): (Vec<BlockMeta>, Vec<BlockMeta>) =
        listing.blocks.into_iter().partition(|b| b.tempo.is_some());
    if tempo.is_empty() {
        return Err(ConvertError::Read(format!(
            "{} (tenant {}) holds no Tempo blocks to convert",
            from.display(),
            from.tenant()
        )));
    }
    let mut report = ConvertReport {
        tempo_blocks: tempo.len(),
        other_blocks: other.len(),
        ..ConvertReport::default()
    };
    for (i, block) in tempo.iter().enumerate() {
        let mut chunk = Chunk::new(block, options);
        for part in tempo_parts(from, block) {
            let mut traces = std::pin::pin!(read_traces(from.object_store(), part));
            while let Some(batch) = traces
                .try_next()
                .await
                .map_err(|e| ConvertError::Read(e.to_string()))?
            {
                for trace in batch {
                    if chunk.push(trace) {
                        chunk.write(to, &mut report.written).await?;
                    }
                }
                progress(ConvertProgress {
                    block: i + 1,
                    blocks: tempo.len(),
                    spans: report.written.spans,
                });
            }
        }
        chunk.write(to, &mut report.written).await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.written.seconds = report.seconds;
    Ok(report)
}

/// The traces of one output block in the making.
struct Chunk<'a> {
    source: &'a BlockMeta,
    options: &'a BlockOptions,
    traces: Vec<Trace>,
    spans: usize,
    number: u128,
}

impl<'a> Chunk<'a> {
    fn new(source: &'a BlockMeta, options: &'a BlockOptions) -> Self {
        Chunk {
            source,
            options,
            traces: Vec::new(),
            spans: 0,
            number: 0,
        }
    }

    /// Adds a trace; whether the chunk is now full.
    fn push(&mut self, trace: Trace) -> bool {
        self.spans += trace.len();
        self.traces.push(trace);
        self.spans >= self.options.spans_per_block
    }

    /// Writes the chunk as one block (if it holds anything) and starts the next.
    async fn write(&mut self, to: &Store, report: &mut IngestReport) -> Result<(), ConvertError> {
        if self.traces.is_empty() {
            return Ok(());
        }
        let id = chunk_id(&self.source.id, self.number);
        let traces = std::mem::take(&mut self.traces);
        // One chunk, one block: the options' block size is already honoured here.
        let options = BlockOptions {
            spans_per_block: usize::MAX,
            ..self.options.clone()
        };
        let mut ids = std::iter::once(id);
        let written = write_traces(
            to,
            traces,
            &options,
            || ids.next().expect("one block per chunk"),
            &|_: Progress| {},
        )
        .await
        .map_err(ConvertError::Write)?;
        report.traces += written.traces;
        report.spans += written.spans;
        report.blocks += written.blocks;
        report.bytes += written.bytes;
        self.spans = 0;
        self.number += 1;
        Ok(())
    }
}

/// The id of output block `number` of Tempo block `source`: the source's UUID with the
/// number mixed into its last bits (the source's own id for the first), or a fresh id
/// if the source's is not a UUID.
fn chunk_id(source: &str, number: u128) -> String {
    match uuid::Uuid::parse_str(source) {
        Ok(id) => uuid::Uuid::from_u128(id.as_u128() ^ number).to_string(),
        Err(_) => crate::store::new_block_id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_ids_are_stable_and_distinct() {
        let source = "6ed8f22a-e948-4664-9fbb-b1485b8f1662";
        assert_eq!(chunk_id(source, 0), source);
        assert_eq!(chunk_id(source, 1), "6ed8f22a-e948-4664-9fbb-b1485b8f1663");
        assert_ne!(chunk_id(source, 2), chunk_id(source, 3));
    }
}

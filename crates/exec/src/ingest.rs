//! Ingest: OTLP files → traces → blocks in a store.
//!
//! All input is read and checked before anything is written, so bad input leaves the
//! store as it was. Spans of one trace spread over several files land in one block.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::otlp::{InputError, read_file};
use crate::store::{Store, StoreError, new_block_id};
use traceql_format::FormatError;
use traceql_format::block::{BlockOptions, encode_block};
use traceql_format::ids::TraceId;
use traceql_format::model::Span;
use traceql_format::model::Trace;

/// What ingest did.
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Files read.
    pub files: usize,
    /// Traces written.
    pub traces: u64,
    /// Spans written.
    pub spans: u64,
    /// Blocks written.
    pub blocks: u64,
    /// Bytes of block data written.
    pub bytes: u64,
    /// Invalid records skipped (with `skip_invalid`).
    pub skipped: Vec<InputError>,
    /// Wall time.
    pub seconds: f64,
}

impl IngestReport {
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
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Input(e) => write!(f, "{e}"),
            IngestError::Store(e) => write!(f, "{e}"),
            IngestError::Encode(e) => write!(f, "cannot encode block: {e}"),
        }
    }
}

impl std::error::Error for IngestError {}

/// Progress of a long ingest, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    /// `done` of `total` input files read.
    Read {
        /// Files read so far.
        done: usize,
        /// Files in all.
        total: usize,
    },
    /// `done` of `total` spans written.
    Write {
        /// Spans written so far.
        done: u64,
        /// Spans in all.
        total: u64,
    },
}

/// Reads OTLP `files` and writes their traces to `store`.
pub async fn ingest_files(
    store: &Store,
    files: &[PathBuf],
    options: &BlockOptions,
    skip_invalid: bool,
    progress: &dyn Fn(Progress),
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let mut traces: BTreeMap<TraceId, Trace> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let read = read_file(file, skip_invalid).map_err(IngestError::Input)?;
        skipped.extend(read.skipped);
        for span in read.spans {
            traces.entry(span.trace_id).or_default().push(span);
        }
        progress(Progress::Read {
            done: i + 1,
            total: files.len(),
        });
    }
    let mut report =
        write_traces(store, traces.into_values(), options, new_block_id, progress).await?;
    report.files = files.len();
    report.skipped = skipped;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes traces to `store` in order of trace start (then trace id), cutting blocks at
/// trace boundaries, so each block covers a stretch of time. Each trace's spans are
/// sorted by start time (then span id) first.
pub async fn write_traces(
    store: &Store,
    traces: impl IntoIterator<Item = Trace>,
    options: &BlockOptions,
    mut block_id: impl FnMut() -> String,
    progress: &dyn Fn(Progress),
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let mut traces: Vec<Trace> = traces.into_iter().collect();
    traces.sort_by_cached_key(|t| (trace_start(t), t.first().map(|s| s.trace_id)));
    let total: u64 = traces.iter().map(|t| t.len() as u64).sum();
    let mut report = IngestReport::default();
    let mut block: Vec<Trace> = Vec::new();
    let mut block_spans = 0;
    let mut flush =
        async |block: &mut Vec<Trace>, report: &mut IngestReport| -> Result<(), IngestError> {
            if block.is_empty() {
                return Ok(());
            }
            let encoded = encode_block(&block_id(), block, options).map_err(IngestError::Encode)?;
            store
                .write_block(&encoded)
                .await
                .map_err(IngestError::Store)?;
            report.blocks += 1;
            report.traces += encoded.meta.traces;
            report.spans += encoded.meta.spans;
            report.bytes += encoded.meta.bytes;
            block.clear();
            progress(Progress::Write {
                done: report.spans,
                total,
            });
            Ok(())
        };
    for mut trace in traces {
        trace.sort_by(|a: &Span, b: &Span| {
            (a.start_unix_nano, a.span_id).cmp(&(b.start_unix_nano, b.span_id))
        });
        block_spans += trace.len();
        block.push(trace);
        if block_spans >= options.spans_per_block {
            flush(&mut block, &mut report).await?;
            block_spans = 0;
        }
    }
    flush(&mut block, &mut report).await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The earliest span start of a trace.
fn trace_start(trace: &Trace) -> u64 {
    trace.iter().map(|s| s.start_unix_nano).min().unwrap_or(0)
}

//! Spans of a group too large for memory, spread over partition files by trace id on
//! local disk (Arrow IPC, LZ4-compressed, in the span table's rows with no typed
//! columns, so nothing is lost), so that each partition, holding every part of its
//! traces, is read back whole: the group is read once and written once more, whatever
//! its size.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use traceql_format::block::reader::decode_batch;
use traceql_format::block::schema::block_schema;
use traceql_format::block::span_batch;
use traceql_format::ids::TraceId;
use traceql_format::model::{Span, Trace};

use crate::store::process_running;

/// The directories of spill files start with this, then the process id.
const PREFIX: &str = "traceql-compact-";

/// Partition files being written, in a directory deleted when this is dropped.
pub struct Spill {
    dir: PathBuf,
    schema: SchemaRef,
    writers: Vec<FileWriter<BufWriter<File>>>,
    pending: Vec<Vec<Span>>,
    /// Spans buffered per partition before they are written out.
    flush_spans: usize,
}

/// A failure of the spill files, as a message naming the file.
pub type SpillError = String;

impl Spill {
    /// `partitions` empty partition files in a new directory under the system's
    /// temporary directory, each written `flush_spans` spans at a time.
    pub fn new(partitions: usize, flush_spans: usize, name: &str) -> Result<Spill, SpillError> {
        remove_abandoned();
        let dir = std::env::temp_dir().join(format!("{PREFIX}{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let schema = block_schema(&[]);
        let mut spill = Spill {
            dir,
            schema,
            writers: Vec::new(),
            pending: vec![Vec::new(); partitions],
            flush_spans: flush_spans.max(1),
        };
        for p in 0..partitions {
            let path = spill.path(p);
            let file = File::create(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            // Compressed: uncompressed rows take about a kilobyte per span on disk.
            let options = IpcWriteOptions::default()
                .try_with_compression(Some(CompressionType::LZ4_FRAME))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let writer =
                FileWriter::try_new_with_options(BufWriter::new(file), &spill.schema, options)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            spill.writers.push(writer);
        }
        Ok(spill)
    }

    fn path(&self, partition: usize) -> PathBuf {
        self.dir.join(format!("{partition}.arrow"))
    }

    /// Adds `span` to partition `partition`.
    pub fn push(&mut self, partition: usize, span: Span) -> Result<(), SpillError> {
        self.pending[partition].push(span);
        if self.pending[partition].len() >= self.flush_spans {
            self.flush(partition)?;
        }
        Ok(())
    }

    fn flush(&mut self, partition: usize) -> Result<(), SpillError> {
        let spans = std::mem::take(&mut self.pending[partition]);
        if spans.is_empty() {
            return Ok(());
        }
        let traces = by_trace(spans);
        let path = self.path(partition);
        let failed = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
        let batch = span_batch(&self.schema, &[], &traces).map_err(|e| failed(&e))?;
        self.writers[partition]
            .write(&batch)
            .map_err(|e| failed(&e))
    }

    /// Finishes writing; the partitions can then be read.
    pub fn finish(&mut self) -> Result<(), SpillError> {
        for p in 0..self.writers.len() {
            self.flush(p)?;
            let path = self.path(p);
            self.writers[p]
                .finish()
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// The spans of partition `partition`.
    pub fn read(&self, partition: usize) -> Result<Vec<Span>, SpillError> {
        let path = self.path(partition);
        let failed = |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", path.display());
        let file = File::open(&path).map_err(|e| failed(&e))?;
        let reader =
            FileReader::try_new(std::io::BufReader::new(file), None).map_err(|e| failed(&e))?;
        let mut spans = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| failed(&e))?;
            decode_batch(&batch, &[], &mut spans).map_err(|e| failed(&e))?;
        }
        Ok(spans)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `spans` grouped by trace.
pub fn by_trace(spans: Vec<Span>) -> Vec<Trace> {
    let mut traces: rustc_hash::FxHashMap<TraceId, Trace> = Default::default();
    for span in spans {
        traces.entry(span.trace_id).or_default().push(span);
    }
    traces.into_values().collect()
}

/// Deletes the spill directories of compactions whose process is gone (killed).
fn remove_abandoned() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse().ok())
        else {
            continue;
        };
        if process_running(pid) == Some(false) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

//! Spans of a group too large for memory, on local disk (Arrow IPC, LZ4-compressed, in
//! the span table's rows with no typed columns, so nothing is lost): first spread over
//! partition files by trace id ([`Spill`]), so that each partition, holding every part
//! of its traces, can be read back whole; then each partition's traces sorted into a
//! run ([`Runs`]), read back a batch at a time ([`RunReader`]) to be merged.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use traceql_format::block::reader::decode_batch;
use traceql_format::block::schema::block_schema;
use traceql_format::block::{row_groups, span_batch};
use traceql_format::ids::TraceId;
use traceql_format::model::{Span, Trace};

use crate::store::process_running;

/// The directories of spill files start with this, then the process id.
const PREFIX: &str = "traceql-compact-";

/// A directory of temporary files, deleted when this is dropped.
struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under the system's temporary directory, named for this process
    /// and `name`; first deletes those of compactions that were killed.
    fn new(name: &str) -> Result<TempDir, SpillError> {
        remove_abandoned();
        let dir = std::env::temp_dir().join(format!("{PREFIX}{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Partition files being written.
pub struct Spill {
    dir: TempDir,
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
        let mut spill = Spill {
            dir: TempDir::new(name)?,
            schema: block_schema(&[]),
            writers: Vec::new(),
            pending: vec![Vec::new(); partitions],
            flush_spans: flush_spans.max(1),
        };
        for p in 0..partitions {
            let path = spill.path(p);
            spill.writers.push(create(&path, &spill.schema)?);
        }
        Ok(spill)
    }

    fn path(&self, partition: usize) -> PathBuf {
        self.dir.0.join(format!("{partition}.arrow"))
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

    /// The spans of partition `partition`, whose file is then deleted.
    pub fn take(&self, partition: usize) -> Result<Vec<Span>, SpillError> {
        let mut reader = BatchReader::open(self.path(partition))?;
        let mut spans = Vec::new();
        while reader.next(&mut spans)? {}
        let _ = std::fs::remove_file(&reader.path);
        Ok(spans)
    }
}

/// A new file of spans at `path`, LZ4-compressed: uncompressed rows take about a
/// kilobyte per span on disk.
fn create(path: &Path, schema: &SchemaRef) -> Result<FileWriter<BufWriter<File>>, SpillError> {
    let failed = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let options = IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::LZ4_FRAME))
        .map_err(|e| failed(&e))?;
    FileWriter::try_new_with_options(BufWriter::new(file), schema, options).map_err(|e| failed(&e))
}

/// Reads a file of spans a batch at a time.
struct BatchReader {
    path: PathBuf,
    reader: FileReader<BufReader<File>>,
}

impl BatchReader {
    fn open(path: PathBuf) -> Result<BatchReader, SpillError> {
        let file = File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let reader = FileReader::try_new(BufReader::new(file), None)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(BatchReader { path, reader })
    }

    /// Adds the spans of the next batch to `spans`; false at the end of the file.
    fn next(&mut self, spans: &mut Vec<Span>) -> Result<bool, SpillError> {
        let failed =
            |e: &dyn std::fmt::Display| format!("cannot read {}: {e}", self.path.display());
        let Some(batch) = self.reader.next() else {
            return Ok(false);
        };
        let batch = batch.map_err(|e| failed(&e))?;
        decode_batch(&batch, &[], spans).map_err(|e| failed(&e))?;
        Ok(true)
    }
}

/// Sorted runs: files of whole traces in block order, each written at once and read
/// back a batch at a time.
pub struct Runs {
    dir: TempDir,
    schema: SchemaRef,
}

impl Runs {
    /// An empty set of runs in a new directory.
    pub fn new(name: &str) -> Result<Runs, SpillError> {
        Ok(Runs {
            dir: TempDir::new(&format!("{name}-runs"))?,
            schema: block_schema(&[]),
        })
    }

    fn path(&self, run: usize) -> PathBuf {
        self.dir.0.join(format!("{run}.arrow"))
    }

    /// Writes run `run`: `traces` (whole, in block order), in batches of whole traces
    /// of about `batch_spans` spans.
    pub fn write(
        &self,
        run: usize,
        traces: &[Trace],
        batch_spans: usize,
    ) -> Result<(), SpillError> {
        let path = self.path(run);
        let failed = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
        let mut writer = create(&path, &self.schema)?;
        for batch in row_groups(traces, batch_spans.max(1)) {
            let batch = span_batch(&self.schema, &[], batch).map_err(|e| failed(&e))?;
            writer.write(&batch).map_err(|e| failed(&e))?;
        }
        writer.finish().map_err(|e| failed(&e))
    }

    /// Reads run `run` back.
    pub fn reader(&self, run: usize) -> Result<RunReader, SpillError> {
        Ok(RunReader {
            file: BatchReader::open(self.path(run))?,
            traces: VecDeque::new(),
        })
    }
}

/// A run's traces, in order, decoded a batch at a time.
pub struct RunReader {
    file: BatchReader,
    traces: VecDeque<Trace>,
}

impl RunReader {
    /// The next trace, if any.
    pub fn next_trace(&mut self) -> Result<Option<Trace>, SpillError> {
        if self.traces.is_empty() {
            let mut spans = Vec::new();
            // A batch holds whole traces, their spans together.
            if !self.file.next(&mut spans)? {
                return Ok(None);
            }
            for span in spans {
                match self.traces.back_mut() {
                    Some(trace) if trace[0].trace_id == span.trace_id => trace.push(span),
                    _ => self.traces.push_back(vec![span]),
                }
            }
        }
        Ok(self.traces.pop_front())
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

//! Spans out of a store, for other tools: one flat Parquet file with a row per span
//! ([`ExportFormat::Parquet`]), or OTLP that any OpenTelemetry-speaking store ingests,
//! as JSON lines ([`ExportFormat::OtlpJson`]) or length-prefixed protobuf
//! ([`ExportFormat::OtlpProto`]).
//!
//! Both stream: the span table is scanned batch by batch and each batch is written
//! before the next is read, so memory holds a few batches (and, for Parquet, one row
//! group being encoded), whatever the size of the store.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, FixedSizeBinaryArray, Int8Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::execute_stream;
use futures::StreamExt;
use traceql_format::block::TypedColumn;
use traceql_format::block::reader::decode_batch;
use traceql_format::codes::{kind, status};
use traceql_format::ids::hex;
use traceql_format::model::Span;
use traceql_format::schema::columns as c;

use crate::engine::{Engine, EngineError, TimeRange, Window};
use crate::otlp::{request_from_spans, write_framed};
use crate::table::union_typed_columns;

/// What [`Engine::export`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One Parquet file, a row per span: the span table's columns with ids as lowercase
    /// hex and `kind` and `status` as their TraceQL words (`server`, `error`).
    /// `docs/format.md` lists the columns.
    Parquet,
    /// OTLP/JSON lines: one `ExportTraceServiceRequest` per line, as the OpenTelemetry
    /// Collector's file exporter writes them (and `traceql ingest` reads them back).
    OtlpJson,
    /// OTLP/protobuf messages, each behind its length (4 bytes, big-endian), as the
    /// Collector's file exporter writes them with `format: proto`.
    OtlpProto,
}

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Spans written.
    pub spans: u64,
    /// Blocks read.
    pub blocks: u64,
}

/// Column name of the span status in the flat Parquet export (the span table's
/// `status_code`, as a word).
pub const FLAT_STATUS: &str = "status";

/// Rows per row group of the flat Parquet export: large enough for good compression,
/// small enough that the row group being encoded stays small in memory.
const FLAT_ROW_GROUP_ROWS: usize = 128 * 1024;

impl Engine {
    /// Writes every span of the traces in `range` to `out` as `format`, calling
    /// `progress` with the spans written so far after each batch. Returns what was
    /// written; `out` is flushed but not synced.
    pub async fn export(
        &self,
        range: &TimeRange,
        format: ExportFormat,
        out: impl Write + Send,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ExportSummary, EngineError> {
        let blocks = self.select(range, None);
        let metas: Vec<_> = blocks.iter().map(|(b, _)| b.clone()).collect();
        let typed = union_typed_columns(&metas)?;
        let (plan, _) = self.scan(range, &blocks, Window::ALL).await?;
        let state = self.query_state();
        let physical = state.create_physical_plan(&plan).await?;
        let mut stream = execute_stream(physical, Arc::new(TaskContext::from(&state)))?;
        let mut sink = match format {
            ExportFormat::Parquet => {
                Sink::Parquet(Box::new(ParquetSink::new(stream.schema(), out)?))
            }
            ExportFormat::OtlpJson => Sink::Otlp(OtlpSink::new(out, typed, false)),
            ExportFormat::OtlpProto => Sink::Otlp(OtlpSink::new(out, typed, true)),
        };
        let mut summary = ExportSummary {
            spans: 0,
            blocks: blocks.len() as u64,
        };
        while let Some(batch) = stream.next().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => return Err(self.diagnose(e, &blocks).await),
            };
            sink.write(&batch)?;
            summary.spans += batch.num_rows() as u64;
            progress(summary.spans);
        }
        sink.finish()?;
        Ok(summary)
    }
}

/// Where exported batches go.
enum Sink<W: Write + Send> {
    Parquet(Box<ParquetSink<W>>),
    Otlp(OtlpSink<W>),
}

impl<W: Write + Send> Sink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        match self {
            Sink::Parquet(sink) => sink.write(batch),
            Sink::Otlp(sink) => sink.write(batch),
        }
    }

    fn finish(self) -> Result<(), EngineError> {
        match self {
            Sink::Parquet(sink) => sink.finish(),
            Sink::Otlp(sink) => sink.finish(),
        }
    }
}

fn write_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::Output(format!("cannot write the export: {e}"))
}

/// The flat Parquet writer.
struct ParquetSink<W: Write + Send> {
    schema: SchemaRef,
    writer: ArrowWriter<W>,
}

impl<W: Write + Send> ParquetSink<W> {
    fn new(table: SchemaRef, out: W) -> Result<Self, EngineError> {
        let schema = flat_schema(&table);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(FLAT_ROW_GROUP_ROWS))
            .build();
        let writer =
            ArrowWriter::try_new(out, Arc::clone(&schema), Some(props)).map_err(write_error)?;
        Ok(ParquetSink { schema, writer })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let batch = flat_batch(&self.schema, batch)?;
        self.writer.write(&batch).map_err(write_error)
    }

    fn finish(self) -> Result<(), EngineError> {
        let mut out = self.writer.into_inner().map_err(write_error)?;
        out.flush().map_err(write_error)
    }
}

/// The flat export's schema: the span table's with ids as hex strings and kind and
/// status as words.
fn flat_schema(table: &Schema) -> SchemaRef {
    let fields = table.fields().iter().map(|f| match f.name().as_str() {
        c::TRACE_ID | c::SPAN_ID | c::KIND => Field::new(f.name(), DataType::Utf8, false),
        c::PARENT_SPAN_ID => Field::new(f.name(), DataType::Utf8, true),
        c::STATUS_CODE => Field::new(FLAT_STATUS, DataType::Utf8, false),
        _ => f.as_ref().clone(),
    });
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
}

/// A batch of the span table in the flat export's `schema`.
fn flat_batch(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, EngineError> {
    let table = batch.schema();
    let columns = table
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            Ok(match field.name().as_str() {
                c::TRACE_ID | c::SPAN_ID | c::PARENT_SPAN_ID => hex_ids(array)?,
                c::KIND => words(array, kind::name)?,
                c::STATUS_CODE => words(array, status::name)?,
                _ => Arc::clone(array),
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns).map_err(DataFusionError::from)?)
}

fn unexpected(array: &ArrayRef) -> EngineError {
    EngineError::Execution(DataFusionError::Internal(format!(
        "span table column of unexpected type {}",
        array.data_type()
    )))
}

/// Ids as lowercase hex, nulls kept.
fn hex_ids(array: &ArrayRef) -> Result<ArrayRef, EngineError> {
    let ids = array
        .as_any()
        .downcast_ref::<FixedSizeBinaryArray>()
        .ok_or_else(|| unexpected(array))?;
    let hex: StringArray = (0..ids.len())
        .map(|i| ids.is_valid(i).then(|| hex(ids.value(i))))
        .collect();
    Ok(Arc::new(hex))
}

/// Codes as their TraceQL words.
fn words(array: &ArrayRef, name: fn(i8) -> &'static str) -> Result<ArrayRef, EngineError> {
    let codes = array
        .as_any()
        .downcast_ref::<Int8Array>()
        .ok_or_else(|| unexpected(array))?;
    let words: StringArray = codes.iter().map(|code| code.map(name)).collect();
    Ok(Arc::new(words))
}

/// The OTLP/JSON lines writer: one request per batch.
struct OtlpSink<W: Write + Send> {
    out: W,
    typed: Vec<TypedColumn>,
    spans: Vec<Span>,
    /// Protobuf, length-prefixed; JSON lines if not.
    proto: bool,
}

/// Distinct resources (and scopes) remembered per batch, so spans of one service share
/// a `resourceSpans` entry (a batch interleaves the services of its traces).
const SHARED_PER_BATCH: usize = 256;

impl<W: Write + Send> OtlpSink<W> {
    fn new(out: W, typed: Vec<TypedColumn>, proto: bool) -> Self {
        OtlpSink {
            out,
            typed,
            spans: Vec::new(),
            proto,
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        self.spans.clear();
        decode_batch(batch, &self.typed, &mut self.spans)
            .map_err(|e| EngineError::Execution(DataFusionError::External(Box::new(e))))?;
        share(self.spans.iter_mut().map(|s| &mut s.resource));
        share(self.spans.iter_mut().map(|s| &mut s.scope));
        let request = request_from_spans(&self.spans);
        if self.proto {
            return write_framed(&mut self.out, &request).map_err(write_error);
        }
        serde_json::to_writer(&mut self.out, &request).map_err(write_error)?;
        self.out.write_all(b"\n").map_err(write_error)
    }

    fn finish(mut self) -> Result<(), EngineError> {
        self.out.flush().map_err(write_error)
    }
}

/// Makes equal values share one `Arc`, so spans with equal resources (or scopes)
/// group under one `resourceSpans` (or `scopeSpans`) entry.
fn share<'a, T: PartialEq + 'a>(items: impl Iterator<Item = &'a mut Arc<T>>) {
    let mut seen: Vec<Arc<T>> = Vec::new();
    for item in items {
        match seen.iter().find(|s| **s == *item) {
            Some(s) => *item = Arc::clone(s),
            None if seen.len() < SHARED_PER_BATCH => seen.push(Arc::clone(item)),
            None => {}
        }
    }
}

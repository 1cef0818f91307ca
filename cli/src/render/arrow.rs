//! Search results as an Arrow IPC stream: one row per shown span (see
//! `traceql_exec::search::SPAN_COLUMNS`), for pandas (`pyarrow.ipc.open_stream`),
//! Polars (`pl.read_ipc_stream`) or DuckDB (through pyarrow) to read without parsing
//! text. Names and attribute values are dictionary columns; a search written window by
//! window replaces the dictionaries with each window's.

use std::io::Write;

use arrow::ipc::writer::StreamWriter;
use traceql_exec::SearchResults;
use traceql_exec::search::Columns;

/// Traces per record batch.
const TRACES_PER_BATCH: usize = 4096;

/// Writes `results` to `out` as a whole Arrow IPC stream.
pub fn write(results: &SearchResults, out: &mut impl Write) -> std::io::Result<()> {
    let columns = results.columns();
    let mut writer =
        StreamWriter::try_new(out, &columns.schema()).map_err(std::io::Error::other)?;
    write_batches(results, &columns, &mut writer)?;
    writer.finish().map_err(std::io::Error::other)
}

/// Writes `results` as record batches of `columns` to a stream begun with their schema.
pub fn write_batches(
    results: &SearchResults,
    columns: &Columns,
    writer: &mut StreamWriter<impl Write>,
) -> std::io::Result<()> {
    for first in (0..results.len()).step_by(TRACES_PER_BATCH) {
        let batch = results
            .record_batch(columns, first..first + TRACES_PER_BATCH)
            .map_err(std::io::Error::other)?;
        writer.write(&batch).map_err(std::io::Error::other)?;
    }
    Ok(())
}

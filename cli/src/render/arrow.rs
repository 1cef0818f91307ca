//! Search results as an Arrow IPC stream: one row per shown span (see
//! `traceql_exec::search::SPAN_COLUMNS`), for pandas (`pyarrow.ipc.open_stream`),
//! Polars (`pl.read_ipc_stream`) or DuckDB (`read_arrow`) to read without parsing text.

use std::io::Write;

use arrow::ipc::writer::StreamWriter;
use traceql_exec::SearchResults;

/// Traces per record batch.
const TRACES_PER_BATCH: usize = 4096;

/// Writes `results` to `out` as an Arrow IPC stream, a batch per few thousand traces.
pub fn write(results: &SearchResults, out: &mut impl Write) -> std::io::Result<()> {
    let columns = results.columns();
    let mut writer =
        StreamWriter::try_new(out, &columns.schema()).map_err(std::io::Error::other)?;
    for first in (0..results.len()).step_by(TRACES_PER_BATCH) {
        let batch = results
            .record_batch(&columns, first..first + TRACES_PER_BATCH)
            .map_err(std::io::Error::other)?;
        writer.write(&batch).map_err(std::io::Error::other)?;
    }
    writer.finish().map_err(std::io::Error::other)
}

//! Search results as an Arrow IPC stream: one row per shown span (see
//! `traceql_exec::search::SPAN_COLUMNS`), for pandas (`pyarrow.ipc.open_stream`),
//! Polars (`pl.read_ipc_stream`) or DuckDB (through pyarrow) to read without parsing
//! text. Names and attribute values are dictionary columns; a search written window by
//! window replaces the dictionaries with each window's.

use std::io::Write;
use std::sync::mpsc::sync_channel;

use arrow::ipc::writer::StreamWriter;
use traceql_exec::SearchResults;
use traceql_exec::search::Columns;

/// Traces per record batch.
const TRACES_PER_BATCH: usize = 4096;

/// Writes `results` as record batches of `columns` to a stream begun with their schema.
/// Batches are made on every core, a few ahead of the writer, and written in order.
pub fn write_batches(
    results: &SearchResults,
    columns: &Columns,
    writer: &mut StreamWriter<impl Write>,
) -> std::io::Result<()> {
    let batches = results.len().div_ceil(TRACES_PER_BATCH);
    let batch = |i: usize| {
        let first = i * TRACES_PER_BATCH;
        results
            .record_batch(columns, first..first + TRACES_PER_BATCH)
            .map_err(std::io::Error::other)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(batches);
    if threads <= 1 {
        for i in 0..batches {
            writer.write(&batch(i)?).map_err(std::io::Error::other)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let made: Vec<_> = (0..threads)
            .map(|first| {
                let (send, receive) = sync_channel(2);
                let batch = &batch;
                scope.spawn(move || {
                    for i in (first..batches).step_by(threads) {
                        // A closed channel: the writer stopped; so does this thread.
                        if send.send(batch(i)).is_err() {
                            return;
                        }
                    }
                });
                receive
            })
            .collect();
        for i in 0..batches {
            let next = made[i % threads]
                .recv()
                .map_err(|_| std::io::Error::other("a batch-making thread stopped"))??;
            writer.write(&next).map_err(std::io::Error::other)?;
        }
        Ok(())
    })
}

//! Search results written as the engine hands them over, a window of traces at a time
//! (see `Engine::search_each`): JSON lines, CSV and Arrow, whose output is a sequence of
//! traces or spans, so nothing is held beyond one window.

use std::io::{BufWriter, StdoutLock, Write};

use arrow::ipc::writer::StreamWriter;
use traceql_exec::SearchResults;

use super::Format;
use super::{arrow as arrow_out, traces};

/// Standard output, buffered.
type Out = BufWriter<StdoutLock<'static>>;

/// Where the windows go.
enum Sink {
    /// JSON lines or CSV text.
    Text(Out),
    /// An Arrow IPC stream, once the first window gave its schema.
    Arrow(Option<Box<StreamWriter<Out>>>),
}

/// The message of a failed write to standard output; a reader that went away (`| head`)
/// ends the program quietly, as [`crate::write_stdout`] does.
pub fn write_failed(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    format!("cannot write to standard output: {e}")
}

/// Writes search results window by window in one of [`SearchWriter::FORMATS`].
pub struct SearchWriter {
    format: Format,
    sink: Sink,
}

fn out() -> Out {
    BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

impl SearchWriter {
    /// The formats written window by window.
    pub const FORMATS: [Format; 3] = [Format::Jsonl, Format::Csv, Format::Arrow];

    /// A writer of `format` (one of [`Self::FORMATS`]) to standard output.
    pub fn new(format: Format) -> std::io::Result<SearchWriter> {
        let sink = match format {
            Format::Arrow => Sink::Arrow(None),
            Format::Csv => {
                let mut out = out();
                traces::csv_header(&mut out)?;
                Sink::Text(out)
            }
            _ => Sink::Text(out()),
        };
        Ok(SearchWriter { format, sink })
    }

    /// Writes the traces of one window.
    pub fn write(&mut self, results: &SearchResults) -> std::io::Result<()> {
        match (&mut self.sink, self.format) {
            (Sink::Text(out), Format::Csv) => traces::csv_rows(results, out),
            (Sink::Text(out), _) => traces::json_lines(results, out),
            (Sink::Arrow(writer), _) => {
                let columns = results.columns();
                let writer = match writer {
                    Some(writer) => writer,
                    None => writer.insert(Box::new(
                        StreamWriter::try_new(out(), &columns.schema())
                            .map_err(std::io::Error::other)?,
                    )),
                };
                arrow_out::write_batches(results, &columns, writer)
            }
        }
    }

    /// Ends the output (an Arrow stream's end marker) and flushes it.
    pub fn finish(self) -> std::io::Result<()> {
        match self.sink {
            Sink::Text(mut out) => out.flush(),
            Sink::Arrow(Some(mut writer)) => {
                writer.finish().map_err(std::io::Error::other)?;
                writer.get_mut().flush()
            }
            Sink::Arrow(None) => Ok(()),
        }
    }
}

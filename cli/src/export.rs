//! `traceql export`: spans out of a store, as one flat Parquet file for other tools or
//! as OTLP/JSON lines for other trace stores.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use traceql_exec::export::{ExportFormat, ExportSummary};
use traceql_exec::{Engine, EngineError};

use crate::common::{failure, open, progress_bar};
use crate::data;
use crate::render::{self, Format};

/// Arguments of `traceql export`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql export --data ./traces --format parquet --output spans.parquet
  duckdb -c \"SELECT name, count(*) FROM 'spans.parquet' WHERE status = 'error' GROUP BY 1\"
  traceql export --data ./traces --format otlp-json --since 1h | gzip > last-hour.jsonl.gz")]
pub struct ExportArgs {
    #[command(flatten)]
    store: data::ReadArgs,
    /// Output format (Parquet with ids as hex, kind and status as words).
    #[arg(long, value_parser = render::format::parser(Format::EXPORT))]
    format: Format,
    /// The file to write (default: standard output). It appears only once complete.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    range: crate::time::RangeArgs,
}

/// Runs `traceql export`.
pub async fn run(args: &ExportArgs) -> ExitCode {
    let range = match args.range.range() {
        Ok(range) => range,
        Err(e) => return crate::fail(&e),
    };
    let format = match args.format {
        Format::Parquet => ExportFormat::Parquet,
        Format::OtlpJson => ExportFormat::OtlpJson,
        Format::OtlpProto => ExportFormat::OtlpProto,
        other => {
            return crate::fail(&format!(
                "--format {} is not supported yet for export; use {}",
                other.name(),
                Format::names(Format::EXPORT)
            ));
        }
    };
    let engine = match open(&args.store).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    let bar = progress_bar();
    bar.set_message("exporting");
    bar.set_length(engine.blocks().map(|b| b.spans).sum());
    let mut progress = |spans| bar.set_position(spans);
    let outcome = match &args.output {
        Some(path) => to_file(&engine, &range, format, path, &mut progress).await,
        None if format == ExportFormat::Parquet && std::io::stdout().is_terminal() => {
            return crate::fail(
                &"Parquet is binary: give --output FILE or redirect standard output",
            );
        }
        None => {
            let out = BufWriter::new(std::io::stdout());
            engine.export(&range, format, out, &mut progress).await
        }
    };
    bar.finish_and_clear();
    match outcome {
        Ok(summary) => {
            eprintln!(
                "exported {} spans from {} blocks{}",
                summary.spans,
                summary.blocks,
                args.output
                    .as_ref()
                    .map(|p| format!(" to {}", p.display()))
                    .unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => failure(&e),
    }
}

/// Exports into a temporary file beside `path` and renames it into place once complete,
/// so `path` never holds half an export.
async fn to_file(
    engine: &Engine,
    range: &traceql_exec::TimeRange,
    format: ExportFormat,
    path: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary, EngineError> {
    let name = path.file_name().ok_or_else(|| {
        EngineError::InvalidInput(format!("--output {} is not a file name", path.display()))
    })?;
    let mut partial = name.to_os_string();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = path.with_file_name(partial);
    let cannot =
        |e: std::io::Error| EngineError::Output(format!("cannot write {}: {e}", path.display()));
    let file = File::create(&partial).map_err(cannot)?;
    let result = async {
        let mut out = BufWriter::new(&file);
        let summary = engine.export(range, format, &mut out, progress).await?;
        out.flush().map_err(cannot)?;
        drop(out);
        file.sync_all().map_err(cannot)?;
        std::fs::rename(&partial, path).map_err(cannot)?;
        Ok(summary)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

//! `traceql ingest`: load OTLP files into a store.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use traceql_exec::ingest::{Progress, ingest_files};
use traceql_exec::otlp::find_input_files;

use crate::data;

/// Arguments of `traceql ingest`.
#[derive(Args)]
pub struct IngestArgs {
    #[command(flatten)]
    write: data::WriteArgs,
    #[command(flatten)]
    memory: data::WriteMemoryArgs,
    /// OTLP files or directories (searched recursively): OTLP/JSON, JSON lines, or
    /// protobuf (`.pb`, `.binpb`), optionally gzip or zstd compressed.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Skip invalid records and report how many, instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,
}

/// Runs `traceql ingest`.
pub async fn run(args: &IngestArgs) -> ExitCode {
    let store = match args.write.store() {
        Ok(store) => store,
        Err(e) => return crate::fail(&e),
    };
    let files = match find_input_files(&args.paths) {
        Ok(files) => files,
        Err(e) => return crate::fail(&e),
    };
    let options = args
        .memory
        .ingest_options(args.write.block_options(), args.skip_invalid);
    let bar = progress_bar();
    let report = ingest_files(&store, &files, &options, &|p| show(&bar, p)).await;
    bar.finish_and_clear();
    match report {
        Ok(report) => {
            for skipped in &report.skipped {
                eprintln!("skipped: {skipped}");
            }
            crate::say(&format!(
                "ingested {} files into {}: {}",
                report.files,
                store.display(),
                report.summary()
            ));
            if report.partial_traces {
                eprintln!(
                    "note: the input outgrew --memory-limit, so traces whose spans arrived far \
                     apart were written in parts; queries join them, and \
                     `traceql compact --data {}` makes them whole",
                    store.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&format!("{e}\nnothing was written; the store is unchanged")),
    }
}

/// A progress bar on a terminal, nothing otherwise.
pub fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({per_sec}, {eta}) {prefix}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Shows ingest progress on `bar`.
pub fn show(bar: &ProgressBar, p: Progress) {
    match p {
        Progress::Read { done, total } => {
            bar.set_message("reading");
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
        Progress::Write { done, total } => {
            if total > 0 {
                bar.set_message("writing");
                bar.set_length(total);
                bar.set_position(done);
            } else {
                // Written while reading goes on: the bar stays on the input read.
                bar.set_prefix(format!("{done} spans written"));
            }
        }
    }
}

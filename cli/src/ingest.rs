//! `traceql ingest`: load OTLP files into a store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use traceql_exec::ingest::ingest_files;
use traceql_exec::otlp::find_input_files;

use crate::common::{progress_bar, show};
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

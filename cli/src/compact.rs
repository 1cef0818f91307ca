//! `traceql compact`: join traces written in parts and merge small blocks.

use std::process::ExitCode;

use clap::Args;
use traceql_exec::compact::{CompactOptions, CompactProgress, compact};

use crate::data;

/// Arguments of `traceql compact`.
#[derive(Args)]
#[command(after_help = "Examples:
  traceql compact --data ./traces
  traceql compact --data s3://traces --memory-limit 4GiB --all")]
pub struct CompactArgs {
    #[command(flatten)]
    write: data::WriteArgs,
    #[command(flatten)]
    memory: data::WriteMemoryArgs,
    /// Rewrite every group of blocks whose time ranges overlap, not only those with
    /// traces in parts or small blocks: joins traces whose spans were ingested by
    /// separate runs.
    #[arg(long)]
    all: bool,
}

/// Runs `traceql compact`.
pub async fn run(args: &CompactArgs) -> ExitCode {
    let store = match args.write.store() {
        Ok(store) => store,
        Err(e) => return crate::fail(&e),
    };
    let options = CompactOptions {
        write: args
            .memory
            .ingest_options(args.write.block_options(), false),
        all: args.all,
    };
    let bar = crate::common::progress_bar();
    bar.set_message("compacting");
    let report = compact(&store, &options, &|p: CompactProgress| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
    })
    .await;
    bar.finish_and_clear();
    match report {
        Ok(report) => {
            let tidy = &report.tidy;
            if tidy.rolled_back > 0 {
                eprintln!(
                    "cleaned up {} interrupted run(s) ({} hidden block(s) deleted)",
                    tidy.rolled_back, tidy.deleted_blocks
                );
            }
            crate::say(&format!(
                "compacted {}: {}",
                store.display(),
                report.summary()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&format!(
            "{e}\nthe store is as it was before this group; blocks already compacted stay so"
        )),
    }
}

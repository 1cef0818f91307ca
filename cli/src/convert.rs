//! `traceql convert`: rewrite Grafana Tempo's blocks as traceql blocks.

use std::process::ExitCode;

use clap::Args;
use traceql_exec::convert::{ConvertProgress, convert};
use traceql_exec::store::DEFAULT_TENANT;

use crate::data;

/// Arguments of `traceql convert`.
#[derive(Args)]
#[command(after_help = "Examples:
  traceql convert --from s3://tempo-traces --data ./traces
  traceql convert --from ./tempo-data --from-tenant team-a --data ./traces --tenant team-a")]
pub struct ConvertArgs {
    /// The store holding Tempo's blocks: a directory or a bucket URL, laid out as
    /// Tempo writes it (`<tenant>/<block id>/meta.json`, `data.parquet`).
    #[arg(long, value_name = "STORE")]
    from: String,
    /// The tenant of `--from` whose blocks are converted.
    #[arg(long, default_value = DEFAULT_TENANT, value_name = "NAME")]
    from_tenant: String,
    #[command(flatten)]
    write: data::WriteArgs,
}

/// Runs `traceql convert`.
pub async fn run(args: &ConvertArgs) -> ExitCode {
    let from = match args.write.remote().open(&args.from, false) {
        Ok(store) => match store.with_tenant(&args.from_tenant) {
            Ok(store) => store,
            Err(e) => return crate::fail(&e),
        },
        Err(e) => return crate::fail(&e),
    };
    let to = match args.write.store() {
        Ok(store) => store,
        Err(e) => return crate::fail(&e),
    };
    let bar = crate::common::progress_bar();
    bar.set_message("converting");
    let report = convert(
        &from,
        &to,
        &args.write.block_options(),
        &|p: ConvertProgress| {
            bar.set_length(p.blocks as u64);
            bar.set_position(p.block as u64 - 1);
        },
    )
    .await;
    bar.finish_and_clear();
    match report {
        Ok(report) => {
            if report.other_blocks > 0 {
                eprintln!(
                    "left alone: {} traceql block(s) of {}",
                    report.other_blocks,
                    from.display()
                );
            }
            if report.replaced_blocks > 0 {
                eprintln!(
                    "replaced: {} block(s) of an earlier conversion",
                    report.replaced_blocks
                );
            }
            crate::say(&format!(
                "converted {} Tempo block(s) of {} into {}: {}",
                report.converted_blocks,
                from.display(),
                to.display(),
                report.written.summary()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&format!(
            "{e}\nnothing was converted: the conversion is one step, and {} is unchanged",
            to.display()
        )),
    }
}

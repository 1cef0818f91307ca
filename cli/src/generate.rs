//! `traceql gen`: write synthetic traces to a store.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use traceql_exec::ingest::write_generated;
use traceql_gen::{EPOCH_UNIX_NANO, Generator, Rng};

use crate::common::{progress_bar, show};
use crate::data;

/// Arguments of `traceql gen`.
#[derive(Args)]
pub struct GenArgs {
    #[command(flatten)]
    write: data::WriteArgs,
    #[command(flatten)]
    memory: data::WriteMemoryArgs,
    /// How many traces to generate (consumer traces of queued messages included).
    #[arg(long, value_name = "N")]
    traces: usize,
    /// Random seed: the same seed gives the same traces and blocks.
    #[arg(long, default_value_t = 1, value_name = "S")]
    seed: u64,
}

/// Runs `traceql gen`.
pub async fn run(args: &GenArgs) -> ExitCode {
    let store = match args.write.store() {
        Ok(store) => store,
        Err(e) => return crate::fail(&e),
    };
    let started = Instant::now();
    // Traces spread over one hour from a fixed start.
    let gap = 3_600_000_000_000 / args.traces.max(1) as u64;
    let mut generator = Generator::new(args.seed, EPOCH_UNIX_NANO, gap);
    let mut ids = Rng::new(args.seed ^ 0x5eed_b10c);
    let block_id = move || {
        let bytes = (u128::from(ids.next_u64()) << 64 | u128::from(ids.next_u64())).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    };
    let options = args
        .memory
        .ingest_options(args.write.block_options(), false);
    let bar = progress_bar();
    let next = move || {
        let trace = generator.next_trace();
        (trace, generator.next_start())
    };
    let report = write_generated(&store, args.traces, next, &options, block_id, &|p| {
        show(&bar, p)
    })
    .await;
    bar.finish_and_clear();
    match report {
        Ok(mut report) => {
            report.seconds = started.elapsed().as_secs_f64();
            crate::say(&format!(
                "generated into {} (seed {}): {}",
                store.display(),
                args.seed,
                report.summary()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(&e),
    }
}

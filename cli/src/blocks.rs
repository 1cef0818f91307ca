//! `traceql blocks`: list the blocks of a store.

use std::process::ExitCode;

use clap::Args;

use crate::data;
use crate::render::{self, Format};

/// Arguments of `traceql blocks`.
#[derive(Args)]
pub struct BlocksArgs {
    #[command(flatten)]
    store: data::ReadArgs,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = render::format::parser(Format::BLOCKS))]
    format: Format,
    /// List each block's typed attribute columns too.
    #[arg(long, short)]
    verbose: bool,
}

/// Runs `traceql blocks`.
pub async fn run(args: &BlocksArgs) -> ExitCode {
    let store = match args.store.store().await {
        Ok(store) => store,
        Err(e) => return crate::fail(&e),
    };
    let (blocks, skipped) = match store.list().await {
        Ok(listing) => (listing.blocks, listing.skipped),
        Err(e) => return crate::fail(&e),
    };
    match render::blocks::print(
        &blocks,
        &skipped,
        args.format,
        args.verbose,
        store.display(),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(&e),
    }
}

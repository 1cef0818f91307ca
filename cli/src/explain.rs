//! `traceql explain`: how a query runs — canonical form, syntax tree, logical and
//! physical plans.

use std::process::ExitCode;

use crate::query::{failure, open};
use crate::{data, say};

/// Arguments of `traceql explain`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql explain '{ kind = server } && { status = error }'
  traceql explain --ast '{ } | by(resource.service.name) | count() > 5'")]
pub struct ExplainArgs {
    /// The TraceQL query.
    #[arg(allow_hyphen_values = true)]
    query: String,
    #[command(flatten)]
    store: data::ReadArgs,
    /// Also print the syntax tree as JSON.
    #[arg(long)]
    ast: bool,
}

/// Runs `traceql explain`.
pub async fn run(args: &ExplainArgs) -> ExitCode {
    let engine = match open(&args.store).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    match engine.explain(&args.query).await {
        Ok(e) => {
            say(&format!("query:\n  {}\n", e.canonical));
            if args.ast {
                say(&format!("syntax tree:\n{}\n", e.ast));
            }
            say(&format!("logical plan:\n{}\n", e.logical));
            say(&format!("physical plan:\n{}", e.physical));
            ExitCode::SUCCESS
        }
        Err(e) => failure(&e),
    }
}

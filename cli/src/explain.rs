//! `traceql explain`: how a query runs — canonical form, syntax tree, logical and
//! physical plans.

use std::process::ExitCode;

use crate::query::{failure, open};
use crate::say;

/// Arguments of `traceql explain`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql explain '{ kind = server } && { status = error }'
  traceql explain --ast '{ } | by(resource.service.name) | count() > 5'")]
pub struct ExplainArgs {
    /// The TraceQL query.
    #[arg(allow_hyphen_values = true)]
    query: String,
    /// The store whose span table to plan against (default `$TRACEQL_DATA`, else the
    /// bundled demo store).
    #[arg(long, value_name = "STORE")]
    data: Option<String>,
    /// Also print the syntax tree as JSON.
    #[arg(long)]
    ast: bool,
}

/// Runs `traceql explain`.
pub async fn run(args: &ExplainArgs) -> ExitCode {
    let engine = match open(args.data.as_deref()).await {
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

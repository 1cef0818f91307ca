//! `traceql explain`: how a query runs — canonical form, syntax tree, logical and
//! physical plans; with `--analyze`, the plans as they ran, with each operator's rows,
//! bytes and time.

use std::process::ExitCode;

use crate::common::{failure, open};
use crate::render;
use crate::{data, say};

/// Arguments of `traceql explain`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql explain '{ kind = server } && { status = error }'
  traceql explain --ast '{ } | by(resource.service.name) | count() > 5'
  traceql explain --analyze '{ resource.service.name = \"checkout\" } >> { status = error }'")]
pub struct ExplainArgs {
    /// The TraceQL query.
    #[arg(allow_hyphen_values = true)]
    query: String,
    #[command(flatten)]
    store: data::ReadArgs,
    /// Also print the syntax tree as JSON.
    #[arg(long)]
    ast: bool,
    /// Run the query (a search without a limit: every match) and show the plans as
    /// they ran: each operator's output rows and time, and what each scan read and
    /// pruned.
    #[arg(long)]
    analyze: bool,
}

/// Runs `traceql explain`.
pub async fn run(args: &ExplainArgs) -> ExitCode {
    let engine = match open(&args.store).await {
        Ok(engine) => engine,
        Err(e) => return failure(&e),
    };
    let explanation = match engine.explain(&args.query).await {
        Ok(e) => e,
        Err(e) => return failure(&e),
    };
    say(&format!("query:\n  {}\n", explanation.canonical));
    if args.ast {
        say(&format!("syntax tree:\n{}\n", explanation.ast));
    }
    say(&format!("logical plan:\n{}\n", explanation.logical));
    if !args.analyze {
        say(&format!("physical plan:\n{}", explanation.physical));
        return ExitCode::SUCCESS;
    }
    match engine.explain_analyze(&args.query).await {
        Ok(analysis) => {
            for plan in &analysis.plans {
                say(&format!("physical plan, as it ran:\n{plan}"));
            }
            say(&format!("totals:\n{}", render::stats(&analysis.stats)));
            ExitCode::SUCCESS
        }
        Err(e) => failure(&e),
    }
}

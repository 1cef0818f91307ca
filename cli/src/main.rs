//! `traceql`: TraceQL from the terminal.

mod fmt;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  traceql fmt '< .service.name = \"checkout\" && status = error >'
      prints { .service.name = \"checkout\" && status = error }
  traceql fmt '{ span.http.status_code >= 500 } >> { status = error } | count() > 2'
  traceql fmt --ast '{ duration > 1s } | select(span.http.route)'
  echo '{ kind = server }' | traceql fmt

Exit codes: 0 success, 2 parse or validation error, 3 valid but not supported yet,
1 any other failure.";

/// TraceQL from the terminal: format and check queries over OpenTelemetry traces.
#[derive(Parser)]
#[command(name = "traceql", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a query and print it in canonical form (or its syntax tree as JSON).
    Fmt(fmt::FmtArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Fmt(args) => fmt::run(&args),
    }
}

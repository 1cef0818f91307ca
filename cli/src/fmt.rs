//! `traceql fmt`: check a query and print its canonical form or its AST.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::Args;
use traceql_parser::{Error, ErrorKind, parse_and_validate};

/// Arguments of `traceql fmt`.
#[derive(Args)]
pub struct FmtArgs {
    /// The query; read from standard input when absent or `-`.
    #[arg(allow_hyphen_values = true)]
    query: Option<String>,
    /// Print the syntax tree as JSON instead of the canonical text.
    #[arg(long)]
    ast: bool,
}

/// Runs `traceql fmt`.
pub fn run(args: &FmtArgs) -> ExitCode {
    let source = match args.query.as_deref() {
        Some(q) if q != "-" => q.to_string(),
        _ => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("error: cannot read the query from standard input: {e}");
                return ExitCode::FAILURE;
            }
            text.trim_end().to_string()
        }
    };
    match parse_and_validate(&source) {
        Ok(query) if args.ast => match serde_json::to_string_pretty(&query) {
            Ok(json) => {
                crate::say(&json);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot print the syntax tree: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(query) => {
            crate::say(&query);
            ExitCode::SUCCESS
        }
        Err(err) => report(&err, &source),
    }
}

/// Prints a query error to standard error and returns its exit code:
/// 2 for parse and validation errors, 3 for unsupported constructs.
pub fn report(err: &Error, source: &str) -> ExitCode {
    eprint!("{}", err.render(source, stderr_color()));
    match err.kind {
        ErrorKind::Parse | ErrorKind::Validation => ExitCode::from(2),
        ErrorKind::Unsupported => ExitCode::from(3),
    }
}

/// Colour on standard error only on a terminal, and never when `NO_COLOR` is set.
fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

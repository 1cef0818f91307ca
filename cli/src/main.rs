//! `traceql`: TraceQL from the terminal.

mod blocks;
mod common;
mod compact;
mod convert;
mod data;
mod explain;
mod export;
mod fmt;
mod generate;
mod ingest;
mod insights;
mod pages;
mod query;
mod render;
mod repl;
mod serve;
mod services;
mod size;
mod time;
mod trace;
mod worker;

use std::fmt::Display;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: queries allocate many short-lived
/// buffers from two threads, which glibc's allocator serves with page faults and lock
/// contention (see the commit adding it for the measurements).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLES: &str = "\
Examples:
  traceql fmt '< .service.name = \"checkout\" && status = error >'
      prints { .service.name = \"checkout\" && status = error }
  traceql fmt '{ span.http.status_code >= 500 } >> { status = error } | count() > 2'
  traceql fmt --ast '{ duration > 1s } | select(span.http.route)'
  echo '{ kind = server }' | traceql fmt
  traceql ingest --data ./traces otel-export/            # OTLP JSON, JSON lines or protobuf
  traceql gen --data ./traces --traces 100000 --seed 7   # synthetic traces
  traceql compact --data ./traces                        # join traces ingested in parts
  traceql blocks --data ./traces --format json
  traceql query '{ resource.service.name = \"checkout\" } >> { status = error }'
  traceql query --since 1h --limit 50 --format json '{ duration > 500ms } | count() > 2'
  traceql trace 9cd3aded5780380407a67f88147d4b87
  traceql services --format dot | dot -Tsvg > services.svg   # who calls whom
  traceql insights --since 1h        # N+1 queries and calls, slow queries, critical path
  traceql explain '{ status = error } | by(resource.service.name)'
  traceql export --data ./traces --format parquet --output spans.parquet
  traceql repl                       # history, multi-line input, Tab completion, \\help
  traceql serve --data ./traces      # Tempo's HTTP API for Grafana on 127.0.0.1:3200
  traceql completions bash > ~/.local/share/bash-completion/completions/traceql

Without --data, commands use $TRACEQL_DATA, and commands that only read fall back to the
demo store bundled in the binary.

Exit codes: 0 success, 2 parse or validation error, 3 valid but not supported yet,
1 any other failure.";

/// TraceQL from the terminal: format and check queries, load and explore OpenTelemetry traces.
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
    /// Load OTLP files (JSON, JSON lines, protobuf; gzip or zstd) into a store.
    Ingest(ingest::IngestArgs),
    /// Write deterministic synthetic traces of a microservice system to a store.
    #[command(name = "gen")]
    Generate(generate::GenArgs),
    /// List the blocks of a store.
    Blocks(blocks::BlocksArgs),
    /// Search traces with TraceQL.
    Query(query::QueryArgs),
    /// Search interactively: history, multi-line input, completion, \\commands.
    Repl(repl::ReplArgs),
    /// Print a shell completion script: `traceql completions bash > /etc/bash_completion.d/traceql`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Show which service calls which: requests, failures and latencies per edge.
    Services(services::ServicesArgs),
    /// Find N+1 queries and calls and slow database queries; show where the time went.
    Insights(insights::InsightsArgs),
    /// Show one whole trace.
    Trace(trace::TraceArgs),
    /// Show how a query is planned: syntax tree, logical and physical plans.
    Explain(explain::ExplainArgs),
    /// Write a store's spans as one flat Parquet file or as OTLP/JSON lines.
    Export(export::ExportArgs),
    /// Rewrite Grafana Tempo's blocks (vParquet4, vParquet5) as traceql blocks.
    Convert(convert::ConvertArgs),
    /// Join traces that were written in parts, merge small blocks, clean up after
    /// interrupted runs.
    Compact(compact::CompactArgs),
    /// Serve Grafana Tempo's query API (search, traces, tags, metrics; HTTP and
    /// streaming gRPC on one port) over a store.
    Serve(serve::ServeArgs),
    /// Run the shares of queries that coordinators (`query --cluster …`) send: one per
    /// machine of a cluster.
    Worker(worker::WorkerArgs),
}

/// Prints `text` and a newline to standard output. A reader that went away (`| head`)
/// ends the program quietly instead of with a panic.
pub fn say(text: &dyn Display) {
    write_stdout(|out| std::io::Write::write_fmt(out, format_args!("{text}\n")));
}

/// Writes to standard output with `write` (buffered) and flushes. A reader that went
/// away (`| head`) ends the program quietly instead of with a panic.
pub fn write_stdout(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock<'static>>) -> std::io::Result<()>,
) {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if let Err(e) = write(&mut out).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Prints `error: …` and returns exit code 1.
pub fn fail(message: &dyn Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Fmt(args) => return fmt::run(args),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "traceql", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Ingest(_) | Command::Serve(_) => pages::without_huge_pages(),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async {
        match &cli.command {
            Command::Fmt(_) | Command::Completions { .. } => unreachable!("handled above"),
            Command::Ingest(args) => ingest::run(args).await,
            Command::Generate(args) => generate::run(args).await,
            Command::Blocks(args) => blocks::run(args).await,
            Command::Query(args) => query::run(args).await,
            Command::Trace(args) => trace::run(args).await,
            Command::Services(args) => services::run(args).await,
            Command::Insights(args) => insights::run(args).await,
            Command::Repl(args) => repl::run(args).await,
            Command::Explain(args) => explain::run(args).await,
            Command::Export(args) => export::run(args).await,
            Command::Convert(args) => convert::run(args).await,
            Command::Compact(args) => compact::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Worker(args) => worker::run(args).await,
        }
    })
}

//! `traceql worker`: runs the shares of queries that `--cluster` coordinators send it.

use std::net::SocketAddr;
use std::process::ExitCode;

use traceql_cluster::WorkerOptions;

use crate::data::RemoteArgs;
use crate::fail;

/// `traceql worker` arguments.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  traceql worker --listen 127.0.0.1:7070
  traceql worker --listen 0.0.0.0:7070 --memory-limit 8GiB   # reachable from other machines
  traceql query --cluster 10.0.0.5:7070,10.0.0.6:7070 --data s3://bucket/traces '{ status = error }'

Workers open the stores that queries name with their own credentials (the AWS, Google
and Azure environment variables, AWS_PROFILE, an instance role): plans carry no secrets.")]
pub struct WorkerArgs {
    /// The address to listen on (loopback unless told otherwise; port 0 picks a free
    /// one, printed on standard output).
    #[arg(long, default_value = "127.0.0.1:7070", value_name = "ADDR")]
    listen: SocketAddr,
    /// The most memory the queries' operators may hold at once on this worker, e.g.
    /// 4GiB (default: half of the machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_size)]
    memory_limit: Option<usize>,
    #[command(flatten)]
    remote: RemoteArgs,
}

/// Runs `traceql worker` until Ctrl-C or SIGTERM.
pub async fn run(args: &WorkerArgs) -> ExitCode {
    let options = WorkerOptions {
        memory_limit: args
            .memory_limit
            .unwrap_or_else(traceql_exec::engine::default_memory_limit),
        store: args.remote.options(),
    };
    let worker = match traceql_cluster::worker(&options) {
        Ok(worker) => worker,
        Err(e) => return fail(&e),
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on {}: {e}", args.listen)),
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    crate::say(&format!("traceql worker listening on http://{address}"));
    match traceql_cluster::serve(worker, listener, stopped()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

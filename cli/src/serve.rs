//! `traceql serve`: Grafana Tempo's query API over a store, for Grafana and every
//! Tempo client.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use traceql_server::{Limits, Tenants};

use crate::common::{engine_options, failure, open_with};
use crate::{data, fail};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql serve --data ./traces                        # http://127.0.0.1:3200
  traceql serve --data s3://bucket/tempo --listen 0.0.0.0:3200
  curl 'http://127.0.0.1:3200/api/search?q=%7B%20status%20%3D%20error%20%7D&limit=5'

Point Grafana's Tempo data source at the address; see README \"Use traceql from Grafana\".")]
pub struct ServeArgs {
    #[command(flatten)]
    store: data::ReadArgs,
    /// The address to listen on (loopback unless told otherwise).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3200")]
    listen: SocketAddr,
    /// Queries run at once; more wait their turn (default: two per core). Health
    /// checks never wait.
    #[arg(long, value_name = "N")]
    max_queries: Option<usize>,
    /// Seconds a query may run before it is stopped and answered with a 504.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    query_timeout: u64,
    /// The most memory one query's operators may hold, e.g. 1GiB, out of
    /// --memory-limit, which all queries share (default: --memory-limit divided by
    /// --max-queries). A query that needs more fails alone, with a 422.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_size)]
    query_memory_limit: Option<usize>,
    /// Seconds between listings of the store: blocks added, compacted or deleted since
    /// are searched, or no longer read, from the next listing on.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    refresh: u64,
}

pub async fn run(args: &ServeArgs) -> ExitCode {
    let defaults = Limits::default();
    let limits = Limits {
        max_queries: args.max_queries.unwrap_or(defaults.max_queries).max(1),
        timeout: Duration::from_secs(args.query_timeout.max(1)),
    };
    let mut options = engine_options(&args.store);
    let share = options.memory_limit / limits.max_queries;
    options.query_memory_limit = Some(args.query_memory_limit.unwrap_or(share));
    let engine = match open_with(&args.store, options).await {
        Ok(engine) => Arc::new(engine),
        Err(e) => return failure(&e),
    };
    let store = match args.store.store().await {
        Ok(store) => store,
        Err(e) => return failure(&e.into()),
    };
    let name = engine.store_name().to_string();
    let tenants = Arc::new(Tenants::new(
        store,
        engine,
        Duration::from_secs(args.refresh.max(1)),
    ));
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on {}: {e}", args.listen)),
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    eprintln!(
        "traceql serve: Tempo's API for {name} on http://{address} (HTTP, and streaming \
         gRPC on the same port; Ctrl-C stops)"
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match traceql_server::serve(listener, tenants, limits, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("the server stopped: {e}")),
    }
}

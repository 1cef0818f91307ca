//! `traceql serve`: Grafana Tempo's query API over a store, for Grafana and every
//! Tempo client.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use std::path::PathBuf;

use traceql_format::block::BlockOptions;
use traceql_live::{IngestLimits, Live, LiveOptions};
use traceql_server::ingest::IngestOptions;
use traceql_server::{Ingesting, Limits, Tenants};

use crate::common::{engine_options, failure, open_with};
use crate::{data, fail};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  traceql serve --data ./traces                        # http://127.0.0.1:3200
  traceql serve --data s3://bucket/tempo --listen 0.0.0.0:3200
  curl 'http://127.0.0.1:3200/api/search?q=%7B%20status%20%3D%20error%20%7D&limit=5'

As a trace backend (OTLP in, on 4318 and 4317):
  traceql serve --data ./traces --otlp
  traceql serve --data s3://bucket/traces --otlp --wal /var/lib/traceql/wal --retention 14d

Point Grafana's Tempo data source at the address; see README \"Use traceql from Grafana\"
and \"Run traceql as your trace backend\".")]
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
    #[command(flatten)]
    receive: ReceiveArgs,
}

/// Taking spans over OTLP.
#[derive(clap::Args)]
#[command(next_help_heading = "Taking spans (OTLP)")]
struct ReceiveArgs {
    /// Take spans over OTLP/HTTP on 127.0.0.1:4318 and OTLP/gRPC on 127.0.0.1:4317
    /// (--otlp-http and --otlp-grpc choose other addresses, or one of the two).
    #[arg(long)]
    otlp: bool,
    /// Take spans over OTLP/HTTP (`POST /v1/traces`) on this address.
    #[arg(long, value_name = "ADDR")]
    otlp_http: Option<SocketAddr>,
    /// Take spans over OTLP/gRPC (`TraceService/Export`) on this address.
    #[arg(long, value_name = "ADDR")]
    otlp_grpc: Option<SocketAddr>,
    /// The write-ahead log's directory (default: `wal` in a local --data directory;
    /// required for a remote store). A span is acknowledged once it is there.
    #[arg(long, value_name = "DIR")]
    wal: Option<PathBuf>,
    /// Remove blocks whose spans all ended longer ago than this, e.g. 14d.
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    retention: Option<u64>,
    /// The most memory the spans not yet in the store may take; past it senders are
    /// asked to retry (HTTP 429, gRPC RESOURCE_EXHAUSTED).
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_size, default_value = "1GiB")]
    ingest_memory_limit: usize,
    /// Write the spans received to the store once this many are waiting…
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    flush_spans: usize,
    /// …or the oldest has waited this long.
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration, default_value = "5m")]
    flush_age: u64,
    /// The largest request taken, uncompressed (larger ones get HTTP 413).
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_size, default_value = "32MiB")]
    max_request_size: usize,
    /// Spans of one trace kept in the head; later ones are refused (a partial success).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_spans_per_trace: usize,
    /// The longest attribute value taken; a span with a longer one is refused.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_size, default_value = "64KiB")]
    max_attribute_size: usize,
    /// Seconds between compactions (and retention) of the store.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    compact_every: u64,
}

impl ReceiveArgs {
    /// The receivers' addresses, if spans are taken.
    fn addresses(&self) -> Option<(Option<SocketAddr>, Option<SocketAddr>)> {
        let default = |port| Some(SocketAddr::from(([127, 0, 0, 1], port)));
        let http = self
            .otlp_http
            .or(if self.otlp { default(4318) } else { None });
        let grpc = self
            .otlp_grpc
            .or(if self.otlp { default(4317) } else { None });
        (http.is_some() || grpc.is_some()).then_some((http, grpc))
    }
}

pub async fn run(args: &ServeArgs) -> ExitCode {
    if args.store.cluster().is_some() && args.receive.addresses().is_some() {
        // Spans taken but not yet flushed are in this process's memory, where no
        // worker can read them.
        return fail(
            &"taking spans (--otlp…) while serving on a cluster is not supported yet: \
              serve the cluster's store without taking spans, and take them in another \
              `traceql serve`",
        );
    }
    let defaults = Limits::default();
    let limits = Limits {
        max_queries: args.max_queries.unwrap_or(defaults.max_queries).max(1),
        timeout: Duration::from_secs(args.query_timeout.max(1)),
    };
    let mut options = engine_options(&args.store);
    let share = options.memory_limit / limits.max_queries;
    options.query_memory_limit = Some(args.query_memory_limit.unwrap_or(share));
    let receivers = args.receive.addresses();
    if receivers.is_some() {
        match args.store.data.as_deref() {
            None => {
                return fail(
                    &"taking spans needs a store to write to: pass --data DIR (or s3://…)",
                );
            }
            Some(location) if !location.contains("://") => {
                if let Err(e) = std::fs::create_dir_all(location) {
                    return fail(&format!("cannot make {location}: {e}"));
                }
            }
            Some(_) => {}
        }
    }
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
        store.clone(),
        engine,
        Duration::from_secs(args.refresh.max(1)),
    ));
    let ingesting = match receivers {
        None => None,
        Some((http, grpc)) => match ingesting(&args.receive, &args.store, &store, http, grpc).await
        {
            Ok(ingesting) => Some(ingesting),
            Err(e) => return fail(&e),
        },
    };
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
    match traceql_server::serve_ingesting(listener, tenants, limits, ingesting, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("the server stopped: {e}")),
    }
}

/// The write path `receive` asks for, over `store`: its log opened and replayed.
async fn ingesting(
    receive: &ReceiveArgs,
    read: &data::ReadArgs,
    store: &traceql_exec::store::Store,
    http: Option<SocketAddr>,
    grpc: Option<SocketAddr>,
) -> Result<Ingesting, String> {
    let wal_dir = match (&receive.wal, read.data.as_deref()) {
        (Some(dir), _) => dir.clone(),
        (None, Some(location)) if !location.contains("://") => PathBuf::from(location).join("wal"),
        (None, _) => {
            return Err(
                "a remote store needs --wal DIR, a local directory for the write-ahead log".into(),
            );
        }
    };
    let block = BlockOptions {
        spans_per_block: receive.flush_spans.max(1),
        ..BlockOptions::default()
    };
    let options = LiveOptions {
        wal_dir: wal_dir.clone(),
        memory_limit: receive.ingest_memory_limit,
        block,
        flush_spans: receive.flush_spans.max(1),
        flush_age: Duration::from_nanos(receive.flush_age.max(1)),
        limits: IngestLimits {
            max_spans_per_trace: receive.max_spans_per_trace.max(1),
            max_attribute_bytes: receive.max_attribute_size,
        },
    };
    let (live, replayed) = Live::open(options, store).await?;
    if let Some(cut) = &replayed.cut {
        eprintln!("traceql serve: {cut}");
    }
    if replayed.records + replayed.skipped > 0 {
        eprintln!(
            "traceql serve: replayed {} spans of {} records from the write-ahead log in {} \
             ({} records already in the store)",
            replayed.spans,
            replayed.records,
            wal_dir.display(),
            replayed.skipped
        );
    }
    Ok(Ingesting {
        live: Arc::new(live),
        options: IngestOptions {
            http,
            grpc,
            max_request_bytes: receive.max_request_size.max(1),
            maintain_every: Duration::from_secs(receive.compact_every.max(1)),
            retention: receive.retention.map(Duration::from_nanos),
            ..IngestOptions::default()
        },
        listening: Box::new(|http, grpc| {
            if let Some(http) = http {
                eprintln!("traceql serve: OTLP/HTTP on http://{http}/v1/traces");
            }
            if let Some(grpc) = grpc {
                eprintln!("traceql serve: OTLP/gRPC on {grpc}");
            }
        }),
    })
}

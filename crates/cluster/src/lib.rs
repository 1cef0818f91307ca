//! traceql on a cluster: searches and metrics queries spread over many machines, on
//! [datafusion-distributed](https://github.com/datafusion-contrib/datafusion-distributed).
//!
//! - [`worker`]: `traceql worker` serves the engine's worker protocol; it opens the
//!   stores shipped scans name with its own credentials ([`stores`]).
//! - [`coordinator`]: an engine's session made to plan over workers ([`Cluster`]);
//!   each worker gets a disjoint, byte-balanced share of whole-trace row groups, and
//!   searches run their span-set operators on the workers.
//! - [`codec`] and [`functions`]: how our plan nodes and TraceQL's field expressions
//!   reach the workers.
//! - [`channels`]: connections to workers, every call bounded in time.
//!
//! `docs/cluster.md` says why this engine, and what runs where.

pub mod channels;
pub mod codec;
pub mod coordinator;
pub mod functions;
pub mod stores;
pub mod worker;

pub use coordinator::{CLUSTER_ENV, Cluster, PARTITION_BYTES_ENV};
pub use worker::{WorkerOptions, serve, worker};

/// Why a cluster could not be set up or served.
#[derive(Debug)]
pub enum ClusterError {
    /// The workers or options given are not usable.
    Config(String),
    /// The worker service stopped with an error.
    Serve(String),
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Config(m) => write!(f, "{m}"),
            ClusterError::Serve(m) => write!(f, "worker stopped: {m}"),
        }
    }
}

impl std::error::Error for ClusterError {}

impl From<datafusion::error::DataFusionError> for ClusterError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        ClusterError::Config(e.to_string())
    }
}

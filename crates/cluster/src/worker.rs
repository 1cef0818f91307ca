//! `traceql worker`: serves datafusion-distributed's worker protocol, running the
//! stages of plans that coordinators ship to it over the stores it opens itself.

use std::future::Future;
use std::sync::Arc;

use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion_distributed::{DistributedExt, Worker, WorkerQueryContext};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use traceql_exec::store::StoreOptions;

use crate::ClusterError;
use crate::codec::TraceqlCodec;
use crate::stores::OpeningRegistry;

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The most memory, in bytes, that the operators of the stages it runs may hold at
    /// once; a stage that needs more fails, and its query with it.
    pub memory_limit: usize,
    /// How it reaches remote stores (its own credentials come from the environment).
    pub store: StoreOptions,
}

/// The worker service: the session each shipped stage runs in has traceql's codec,
/// and the worker's memory pool and stores.
pub fn worker(options: &WorkerOptions) -> Result<Worker, ClusterError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(GreedyMemoryPool::new(options.memory_limit)))
        .with_object_store_registry(Arc::new(OpeningRegistry::new(options.store.clone())))
        .build_arc()
        .map_err(|e| ClusterError::Config(e.to_string()))?;
    Ok(
        Worker::from_session_builder(|ctx: WorkerQueryContext| async move {
            Ok(ctx
                .builder
                .with_distributed_user_codec(TraceqlCodec)
                .build())
        })
        .with_runtime_env(runtime),
    )
}

/// Serves `worker` on `listener` until `shutdown` completes.
pub async fn serve(
    worker: Worker,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ClusterError> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| ClusterError::Serve(e.to_string()))
}

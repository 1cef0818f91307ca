//! `traceql worker`: serves datafusion-distributed's worker protocol, running the
//! stages of plans that coordinators ship to it over the stores it opens itself.

use std::future::Future;
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::registry::FunctionRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse,
    WorkerQueryContext,
};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use traceql_exec::source::with_cached_page_indexes;
use traceql_exec::store::StoreOptions;

use crate::ClusterError;
use crate::codec::TraceqlCodec;
use crate::functions::ShippedFunctions;
use crate::stores::OpeningRegistry;
use traceql_planner::quantiles::latency_quantiles_udaf;

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
        // Footers and page indexes kept between queries: an eighth of the memory, as a
        // one-machine engine keeps.
        .with_metadata_cache_limit((options.memory_limit / 8).max(50 << 20))
        .with_object_store_registry(Arc::new(OpeningRegistry::new(options.store.clone())))
        .build_arc()
        .map_err(|e| ClusterError::Config(e.to_string()))?;
    let cached = Arc::clone(&runtime);
    let builder = move |ctx: WorkerQueryContext| session(ctx, Arc::clone(&cached));
    Ok(Worker::from_session_builder(builder).with_runtime_env(runtime))
}

/// `plan`'s Parquet scans reading footers and page indexes through the worker's cache,
/// as a one-machine engine does (see `traceql_exec::source::with_cached_page_indexes`):
/// shipped scans come without it, and would read every block's page index again for
/// every query.
fn cached_footers(
    plan: Arc<dyn ExecutionPlan>,
    runtime: &RuntimeEnv,
) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
    let mut url = None;
    plan.apply(|node| {
        if let Some(config) = node
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        {
            url = Some(config.object_store_url.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let Some(url) = url else {
        return Ok(plan);
    };
    let store = runtime.object_store(&url)?;
    let cache = runtime.cache_manager.get_file_metadata_cache();
    with_cached_page_indexes(plan, &store, &cache, None)
}

/// The session a shipped stage runs in: traceql's codec, the worker's cache of footers,
/// and the functions it calls by name, `latency_quantiles` and the field expressions its
/// query sent along.
async fn session(
    ctx: WorkerQueryContext,
    runtime: Arc<RuntimeEnv>,
) -> Result<SessionState, DataFusionError> {
    let mut state = ctx
        .builder
        .with_distributed_user_codec(TraceqlCodec)
        .with_distributed_worker_plan_rewrite_handler(move |ev: WorkerPlanRewriteEvent| {
            cached_footers(ev.plan, &runtime).map(WorkerPlanRewriteEventResponse::new)
        })
        .with_distributed_option_extension_from_headers::<ShippedFunctions>(&ctx.headers)?
        .build();
    state.register_udaf(Arc::new(latency_quantiles_udaf()))?;
    let functions = state
        .config()
        .options()
        .extensions
        .get::<ShippedFunctions>()
        .map(ShippedFunctions::udfs)
        .transpose()?
        .unwrap_or_default();
    for udf in functions {
        state.register_udf(Arc::new(udf))?;
    }
    Ok(state)
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

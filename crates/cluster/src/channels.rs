//! Connections from the coordinator to its workers, each call bounded in time: a
//! worker that is down fails the connection within [`Timeouts::connect`], one that
//! stops answering mid-query fails its HTTP/2 keep-alive pings within
//! [`Timeouts::silence`], and no call waits longer than [`Timeouts::call`] for its
//! answer to begin. Connections are kept and reused across queries. A failure of
//! transport is one line naming the worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_distributed::grpc::{BoxCloneSyncChannel, create_worker_client};
use datafusion_distributed::{
    ChannelResolver, CoordinatorToWorkerMsg, ExecuteTaskRequest, GetWorkerInfoRequest,
    GetWorkerInfoResponse, SetPlanRequest, WorkerChannel, WorkerToCoordinatorMsg,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use http::HeaderMap;
use tonic::transport::Endpoint;
use url::Url;

/// How long the coordinator waits on a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To connect.
    pub connect: Duration,
    /// For the answer to a call to begin.
    pub call: Duration,
    /// For any sign of life on an open connection (keep-alive pings are sent every
    /// third of it).
    pub silence: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            call: Duration::from_secs(60),
            silence: Duration::from_secs(15),
        }
    }
}

/// Connects to workers with [`Timeouts`], one connection per worker, reused.
#[derive(Clone, Default)]
pub struct TimedChannels {
    timeouts: Timeouts,
    channels: Arc<Mutex<HashMap<Url, BoxCloneSyncChannel>>>,
}

impl TimedChannels {
    /// Channels with `timeouts`.
    pub fn new(timeouts: Timeouts) -> TimedChannels {
        TimedChannels {
            timeouts,
            channels: Arc::default(),
        }
    }

    async fn channel(&self, url: &Url) -> Result<BoxCloneSyncChannel> {
        if let Some(channel) = self
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url)
        {
            return Ok(channel.clone());
        }
        let t = self.timeouts;
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| DataFusionError::Plan(format!("invalid worker URL {url}: {e}")))?
            .connect_timeout(t.connect)
            .timeout(t.call)
            .http2_keep_alive_interval(t.silence / 3)
            .keep_alive_timeout(t.silence)
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        let channel = endpoint.connect().await.map_err(|e| {
            DataFusionError::Execution(format!("worker {url} cannot be reached: {}", one_line(&e)))
        })?;
        let channel = BoxCloneSyncChannel::new(channel);
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.clone(), channel.clone());
        Ok(channel)
    }
}

/// The innermost cause of `e`, which is the one that says what happened ("Connection
/// refused").
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[async_trait]
impl ChannelResolver for TimedChannels {
    async fn get_worker_client_for_url(&self, url: &Url) -> Result<Box<dyn WorkerChannel>> {
        let inner = self.channel(url).await.map(create_worker_client)?;
        Ok(Box::new(Named {
            url: url.clone(),
            inner,
        }))
    }
}

/// A worker's client whose failures of transport (the worker died, hung up, or speaks
/// something else than its protocol) name the worker. Errors the worker itself
/// reports (a query over its memory limit, say) keep their kind.
struct Named {
    url: Url,
    inner: Box<dyn WorkerChannel>,
}

impl Named {
    fn name(&self) -> impl Fn(DataFusionError) -> DataFusionError + Send + Sync + 'static {
        let url = self.url.clone();
        move |e| named(&url, e)
    }
}

/// `e`, if it is a failure of transport, as one line naming the worker at `url`.
fn named(url: &Url, e: DataFusionError) -> DataFusionError {
    match e {
        DataFusionError::External(external) => {
            let cause = match external.downcast_ref::<tonic::Status>() {
                Some(status) => format!("{:?}: {}", status.code(), status.message()),
                None => external.to_string(),
            };
            let cause = cause.lines().next().unwrap_or_default().to_string();
            DataFusionError::Execution(format!("worker {url} failed: {cause}"))
        }
        other => other,
    }
}

#[async_trait]
impl WorkerChannel for Named {
    async fn coordinator_channel(
        &mut self,
        headers: HeaderMap,
        set_plan_request: SetPlanRequest,
        c2w_stream: BoxStream<'static, CoordinatorToWorkerMsg>,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<BoxStream<'static, Result<WorkerToCoordinatorMsg>>> {
        let name = self.name();
        let stream = self
            .inner
            .coordinator_channel(headers, set_plan_request, c2w_stream, metrics, task_ctx)
            .await
            .map_err(&name)?;
        Ok(stream.map(move |m| m.map_err(&name)).boxed())
    }

    async fn execute_task(
        &mut self,
        headers: HeaderMap,
        request: ExecuteTaskRequest,
        metrics: ExecutionPlanMetricsSet,
        task_ctx: &Arc<TaskContext>,
    ) -> Result<Vec<BoxStream<'static, Result<RecordBatch>>>> {
        let name = Arc::new(self.name());
        let streams = self
            .inner
            .execute_task(headers, request, metrics, task_ctx)
            .await
            .map_err(name.as_ref())?;
        Ok(streams
            .into_iter()
            .map(|s| {
                let name = Arc::clone(&name);
                s.map(move |b| b.map_err(name.as_ref())).boxed()
            })
            .collect())
    }

    async fn get_worker_info(
        &mut self,
        request: GetWorkerInfoRequest,
    ) -> Result<GetWorkerInfoResponse> {
        let name = self.name();
        self.inner.get_worker_info(request).await.map_err(name)
    }
}

//! Connections from the coordinator to its workers, each call bounded in time: a
//! worker that is down fails the connection within [`Timeouts::connect`], one that
//! stops answering mid-query fails its HTTP/2 keep-alive pings within
//! [`Timeouts::silence`], and no call waits longer than [`Timeouts::call`] for its
//! answer to begin. Connections are kept and reused across queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use datafusion::error::{DataFusionError, Result};
use datafusion_distributed::grpc::{BoxCloneSyncChannel, create_worker_client};
use datafusion_distributed::{ChannelResolver, WorkerChannel};
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
        self.channel(url).await.map(create_worker_client)
    }
}

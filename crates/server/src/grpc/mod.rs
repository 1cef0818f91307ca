//! Tempo's streaming gRPC API, `tempopb.StreamingQuerier`, on the HTTP port: HTTP/2
//! without TLS, as Tempo serves it with `stream_over_http_enabled` and as Grafana's
//! Tempo data source dials it when streaming is on (it ignores the URL's path, so the
//! methods live at `/tempopb.StreamingQuerier/<Method>` at the root).
//!
//! Each call runs in a task of its own, in its turn and within the time limit of the
//! HTTP queries ([`Turns`]), and sends its messages as they are ready: a search sends
//! the traces of each round as the round ends (`search`), metrics and tag searches one
//! whole answer (`metrics`, `tags`). A client that hangs up stops its call. Errors end
//! the stream with the gRPC status that matches the HTTP API's: a bad query is
//! `InvalidArgument` with the diagnostic. Every call is counted in `/metrics` under its
//! method, with the HTTP status its outcome would have had.

pub mod messages;
mod metrics;
mod search;
mod tags;

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tonic::Status;
use tonic::server::{Grpc, ServerStreamingService};
use tonic_prost::ProstCodec;
use traceql_exec::{Engine, EngineError};

use crate::counters::Counters;
use crate::error::ApiError;
use crate::limits::Turns;
use crate::tenants::{TENANT_HEADER, Tenants};

/// The service's name, the first part of its methods' paths.
pub const SERVICE: &str = "tempopb.StreamingQuerier";

/// What every call reads: the tenants' engines, the query turns, the counters.
#[derive(Clone)]
pub(crate) struct Shared {
    /// The tenants' engines.
    pub tenants: Arc<Tenants>,
    /// The turns and time limit queries run in.
    pub turns: Arc<Turns>,
    /// The counters `/metrics` reports.
    pub counters: Arc<Counters>,
}

/// The routes of the service's methods; a method traceql does not have answers
/// `Unimplemented`.
pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route(&path("Search"), post(search::search))
        .route(&path("MetricsQueryRange"), post(metrics::query_range))
        .route(&path("MetricsQueryInstant"), post(metrics::query_instant))
        .route(&path("SearchTags"), post(tags::tags_v1))
        .route(&path("SearchTagsV2"), post(tags::tags_v2))
        .route(&path("SearchTagValues"), post(tags::values_v1))
        .route(&path("SearchTagValuesV2"), post(tags::values_v2))
        .route(&format!("/{SERVICE}/{{method}}"), post(unimplemented))
        .with_state(shared)
}

/// The path of the service's `method`.
fn path(method: &str) -> String {
    format!("/{SERVICE}/{method}")
}

/// A method the service does not have.
async fn unimplemented(request: Request) -> Response {
    let status = Status::unimplemented(format!(
        "traceql serves {SERVICE} Search, MetricsQueryRange, MetricsQueryInstant, \
         SearchTags, SearchTagsV2, SearchTagValues and SearchTagValuesV2, not {}",
        request.uri().path()
    ));
    status.into_http::<axum::body::Body>()
}

/// A call under way: the engine of its tenant, and where its messages go.
pub(crate) struct Call<M> {
    /// The engine of the call's tenant.
    pub engine: Arc<Engine>,
    counters: Arc<Counters>,
    out: UnboundedSender<Result<M, Status>>,
}

/// The largest message a gRPC client takes by default (Grafana's among them).
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

impl<M: prost::Message> Call<M> {
    /// Sends `message`; an error once the client has hung up, which stops the call, or
    /// when the message is larger than a client takes.
    pub fn send(&self, message: M) -> Result<(), EngineError> {
        let bytes = message.encoded_len();
        if bytes > MAX_MESSAGE_BYTES {
            return Err(EngineError::InvalidInput(format!(
                "the answer takes {bytes} bytes, more than the {MAX_MESSAGE_BYTES} a gRPC \
                 message may hold: narrow the query (fewer series or values), or ask over HTTP"
            )));
        }
        self.out
            .send(Ok(message))
            .map_err(|_| EngineError::Output("the client hung up".into()))
    }
}

impl<M> Call<M> {
    /// Counts what the call's query read and where its time went.
    pub fn ran(&self, stats: &traceql_exec::QueryStats) {
        self.counters.ran(stats);
    }
}

/// Answers a server-streaming call (its method is the request's path): decodes its
/// request message and streams the messages `run` sends, then the status of its outcome.
async fn stream<Req, Resp, F, Fut>(shared: Shared, request: Request, run: F) -> Response
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
    F: FnOnce(Req, Call<Resp>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
{
    let handler = Handler {
        shared,
        method: request.uri().path().to_string(),
        tenant: request.headers().get(TENANT_HEADER).cloned(),
        run: Some(run),
        sends: PhantomData,
    };
    Grpc::new(ProstCodec::<Resp, Req>::default())
        .server_streaming(handler, request)
        .await
        .map(axum::body::Body::new)
}

/// The stream of a call's messages; dropping it (the client hung up) stops the call.
type Messages<M> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<M, Status>> + Send>>;

/// Starts the call `request` of `method` for the tenant its `tenant` header names, in a
/// task of its own and in its turn: `run` with the tenant's engine. Returns the stream of
/// its messages.
fn spawn<Req, Resp, F, Fut>(
    shared: Shared,
    method: String,
    tenant: Option<HeaderValue>,
    request: tonic::Request<Req>,
    run: F,
) -> Messages<Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    F: FnOnce(Req, Call<Resp>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
{
    let message = request.into_inner();
    let (out, messages) = unbounded_channel();
    let task = tokio::spawn(async move {
        let mut outcome = Outcome {
            counters: Arc::clone(&shared.counters),
            method,
            started: Instant::now(),
            // Until the call ends: the client hung up.
            status: 499,
        };
        let result = async {
            let engine = shared.tenants.engine_of(tenant.as_ref()).await?;
            let call = Call {
                engine,
                counters: Arc::clone(&shared.counters),
                out: out.clone(),
            };
            shared.turns.run(run(message, call)).await?
        }
        .await;
        outcome.status = match result {
            Ok(()) => StatusCode::OK.as_u16(),
            Err(e) => {
                let status = e.status.as_u16();
                let _ = out.send(Err(grpc_status(&e)));
                status
            }
        };
    });
    Box::pin(Running {
        messages,
        _task: AbortOnDrop(task),
    })
}

/// The messages of a call's task, which is stopped when this is dropped.
struct Running<M> {
    messages: UnboundedReceiver<Result<M, Status>>,
    _task: AbortOnDrop,
}

impl<M> futures::Stream for Running<M> {
    type Item = Result<M, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.messages.poll_recv(cx)
    }
}

/// The gRPC status of an error of the HTTP API.
fn grpc_status(e: &ApiError) -> Status {
    let message = e.message.clone();
    match e.status {
        StatusCode::BAD_REQUEST => Status::invalid_argument(message),
        StatusCode::NOT_FOUND => Status::not_found(message),
        StatusCode::UNPROCESSABLE_ENTITY => Status::resource_exhausted(message),
        StatusCode::GATEWAY_TIMEOUT => Status::deadline_exceeded(message),
        _ => Status::internal(message),
    }
}

/// A call's method, start and outcome, counted when the call ends however it ends.
struct Outcome {
    counters: Arc<Counters>,
    method: String,
    started: Instant,
    status: u16,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.counters.record(
            &self.method,
            self.status,
            self.started.elapsed().as_secs_f64(),
        );
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A server-streaming method for tonic: called once per request, with the call's
/// `run`.
struct Handler<F, Resp, Fut> {
    shared: Shared,
    /// The call's method (its path) and the tenant header it came with.
    method: String,
    tenant: Option<HeaderValue>,
    run: Option<F>,
    /// What `run` sends, and the future it returns.
    sends: PhantomData<fn() -> (Resp, Fut)>,
}

impl<Req, Resp, F, Fut> ServerStreamingService<Req> for Handler<F, Resp, Fut>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    F: FnOnce(Req, Call<Resp>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
{
    type Response = Resp;
    type ResponseStream = Messages<Resp>;
    type Future = std::future::Ready<Result<tonic::Response<Messages<Resp>>, Status>>;

    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        std::future::ready(match self.run.take() {
            Some(run) => Ok(tonic::Response::new(spawn(
                self.shared.clone(),
                std::mem::take(&mut self.method),
                self.tenant.take(),
                request,
                run,
            ))),
            None => Err(Status::internal("a call's handler ran twice")),
        })
    }
}

/// A range in unix seconds from a request's `start` and `end` (0: open), checked as the
/// HTTP API checks it.
fn seconds_range(start: u32, end: u32) -> Result<crate::params::Range, ApiError> {
    let open = |s: u32| (s > 0).then_some(u64::from(s));
    crate::params::seconds_range(open(start), open(end))
}

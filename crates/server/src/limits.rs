//! Limits on the queries a server runs: at most `max_queries` at once (the rest wait
//! their turn), each for at most `timeout`. A query past its time is stopped at its
//! next wait (for data, for a turn of the runtime) — its plan is dropped, which stops
//! its scan — and answered with a 504. Health checks
//! (`/api/echo`, `/ready`) take no turn, so they answer while heavy queries run.
//! A request's target (path and query) is at most [`MAX_TARGET_BYTES`] long.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// How many queries run at once, and for how long each may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Queries running at once; more wait.
    pub max_queries: usize,
    /// The longest a query may run.
    pub timeout: Duration,
}

impl Default for Limits {
    /// Two queries per core at once, five minutes each.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Limits {
            max_queries: 2 * cores,
            timeout: Duration::from_secs(300),
        }
    }
}

/// The turns queries take, shared by the query routes.
pub struct Turns {
    permits: Semaphore,
    timeout: Duration,
}

impl Turns {
    /// Turns for `limits`.
    pub fn new(limits: Limits) -> Arc<Turns> {
        Arc::new(Turns {
            permits: Semaphore::new(limits.max_queries.max(1)),
            timeout: limits.timeout,
        })
    }
}

impl Turns {
    /// Runs `query` in its turn and within the time limit: the 504 to answer when it
    /// runs too long (waiting for its turn counts).
    pub async fn run<T>(&self, query: impl Future<Output = T>) -> Result<T, ApiError> {
        let run = async {
            let _permit = self.permits.acquire().await;
            query.await
        };
        tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| ApiError {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: format!(
                    "the query ran longer than the server's limit of {}s and was stopped \
                     (narrow the time range, or raise --query-timeout)",
                    self.timeout.as_secs_f64()
                ),
            })
    }
}

/// Runs a query route's request in its turn and within the time limit.
pub async fn in_turn(State(turns): State<Arc<Turns>>, request: Request, next: Next) -> Response {
    match turns.run(next.run(request)).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The longest request target (path and query string) served: a query of a few
/// thousand conditions fits; longer ones are refused with a 414 before any work.
pub const MAX_TARGET_BYTES: usize = 64 * 1024;

/// Refuses a request whose target is longer than [`MAX_TARGET_BYTES`].
pub async fn target_length(request: Request, next: Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if length > MAX_TARGET_BYTES {
        return ApiError {
            status: StatusCode::URI_TOO_LONG,
            message: format!(
                "the request's path and query are {length} bytes long; at most \
                 {MAX_TARGET_BYTES} are served"
            ),
        }
        .into_response();
    }
    next.run(request).await
}

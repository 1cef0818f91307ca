//! Limits on the queries a server runs: at most `max_queries` at once (the rest wait
//! their turn), each for at most `timeout`. A query past its time is stopped at its
//! next wait (for data, for a turn of the runtime) — its plan is dropped, which stops
//! its scan — and answered with a 504. Health checks
//! (`/api/echo`, `/ready`) take no turn, so they answer while heavy queries run.

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

/// Runs a query route's request in its turn and within the time limit.
pub async fn in_turn(State(turns): State<Arc<Turns>>, request: Request, next: Next) -> Response {
    let timeout = turns.timeout;
    let run = async {
        let _permit = turns.permits.acquire().await;
        next.run(request).await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(response) => response,
        Err(_) => ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!(
                "the query ran longer than the server's limit of {}s and was stopped \
                 (narrow the time range, or raise --query-timeout)",
                timeout.as_secs_f64()
            ),
        }
        .into_response(),
    }
}

//! Errors as Tempo answers them: the status and the reason as plain text.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use traceql_exec::EngineError;

/// A request that failed: its HTTP status and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The reason, sent as the body.
    pub message: String,
}

impl ApiError {
    /// A 400: the request is wrong (a parameter, the query).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    /// A query that does not parse, is not supported yet or cannot run as written is
    /// the client's error (400); a store or execution failure is the server's (500).
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::Query { .. }
            | EngineError::Unsupported(_)
            | EngineError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            EngineError::MemoryLimit { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            EngineError::Store(_) | EngineError::Execution(_) | EngineError::Output(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match &e {
            EngineError::Query { source, error } => {
                format!("invalid TraceQL query: {}", error.render(source, false))
            }
            EngineError::Unsupported(what) => format!("not supported yet: {what}"),
            other => other.to_string(),
        };
        ApiError {
            status,
            message: message.trim_end().to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response()
    }
}

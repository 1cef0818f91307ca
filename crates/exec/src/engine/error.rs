//! Why a query failed: [`EngineError`], with the CLI's exit code for each kind.

use std::fmt;

use datafusion::error::DataFusionError;

use traceql_planner::PlanError;

use crate::store::StoreError;

/// Why a query (search, metrics query or trace lookup) failed.
#[derive(Debug)]
pub enum EngineError {
    /// The query does not parse or validate; render it with [`EngineError::render`].
    Query {
        /// The query text.
        source: String,
        /// The diagnostic.
        error: traceql_parser::Error,
    },
    /// The query is valid but uses something the engine cannot run yet.
    Unsupported(String),
    /// The query cannot run as written (a bad regular expression, integer division by
    /// zero, comparing two arrays: what only planning or running it finds), or another
    /// argument is malformed (a trace id, a step).
    InvalidInput(String),
    /// The store could not be read.
    Store(StoreError),
    /// The query needed more memory than the engine's limit allows.
    MemoryLimit {
        /// The limit, in bytes.
        limit: usize,
        /// What DataFusion said ran out.
        detail: String,
    },
    /// Planning or execution failed.
    Execution(DataFusionError),
    /// The result could not be written (an export's file, say: disk full).
    Output(String),
}

impl EngineError {
    /// The CLI exit code: 2 for a query error, 3 for "not supported yet", else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Query { error, .. }
                if error.kind == traceql_parser::ErrorKind::Unsupported =>
            {
                3
            }
            EngineError::Query { .. } | EngineError::InvalidInput(_) => 2,
            EngineError::Unsupported(_) => 3,
            EngineError::Store(_)
            | EngineError::MemoryLimit { .. }
            | EngineError::Execution(_)
            | EngineError::Output(_) => 1,
        }
    }

    /// The error as text for a terminal: query errors with the source line and a caret.
    pub fn render(&self, color: bool) -> String {
        match self {
            EngineError::Query { source, error } => error.render(source, color),
            other => format!("error: {other}"),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Query { error, .. } => write!(f, "{}", error.message),
            EngineError::Unsupported(what)
            | EngineError::InvalidInput(what)
            | EngineError::Output(what) => write!(f, "{what}"),
            EngineError::Store(e) => write!(f, "{e}"),
            EngineError::MemoryLimit { limit, detail } => write!(
                f,
                "the query needs more memory than its limit of {} (raise it with \
                 --memory-limit, or narrow the query or its time range): {detail}",
                human_bytes(*limit)
            ),
            EngineError::Execution(e) => write!(f, "{}", e.message()),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<DataFusionError> for EngineError {
    fn from(e: DataFusionError) -> Self {
        match PlanError::find(&e) {
            Some(PlanError::Unsupported(what)) => return EngineError::Unsupported(what.clone()),
            Some(PlanError::Query(what)) => return EngineError::InvalidInput(what.clone()),
            Some(PlanError::Data(_) | PlanError::Internal(_)) | None => {}
        }
        match e {
            DataFusionError::NotImplemented(what) => EngineError::Unsupported(what),
            DataFusionError::Context(_, inner) => EngineError::from(*inner),
            other => EngineError::Execution(other),
        }
    }
}

impl EngineError {
    /// A fault of the engine itself (a plan's answer not in the shape its reader
    /// expects), not of the query or the store.
    pub(crate) fn internal(message: String) -> Self {
        EngineError::Execution(DataFusionError::Internal(message))
    }

    /// `e` as an error of an engine whose memory limit is `limit`: running out of the
    /// memory pool names the limit.
    pub(crate) fn with_memory_limit(e: DataFusionError, limit: usize) -> Self {
        if let DataFusionError::ResourcesExhausted(detail) = e.find_root() {
            let first = detail.lines().next().unwrap_or_default();
            let detail = first
                .split(" with top memory consumers")
                .next()
                .unwrap_or(first)
                .trim()
                .to_string();
            return EngineError::MemoryLimit { limit, detail };
        }
        EngineError::from(e)
    }
}

/// Bytes as people read them: `512.0 MiB`, `2.0 GiB`.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e)
    }
}

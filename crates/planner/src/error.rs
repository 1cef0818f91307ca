//! What can go wrong planning or evaluating TraceQL: [`PlanError`], carried through
//! DataFusion as an external error and found again by whoever ran the plan
//! ([`PlanError::find`]), so the engine can tell "not supported yet" from a query that
//! cannot run as written, from data of the wrong shape, from a bug.

use std::fmt;

use datafusion::error::DataFusionError;

/// Why the planner or a TraceQL function could not go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// A construct the engine cannot run yet, named in a sentence that says so.
    Unsupported(String),
    /// The query cannot run as written: a bad regular expression, `nil` where no
    /// comparison takes it, integer division by zero, comparing two arrays.
    Query(String),
    /// The data is not of the shape the plan reads: a column missing or of another type.
    Data(String),
    /// A plan that should not have been made: a bug.
    Internal(String),
}

impl PlanError {
    /// [`PlanError::Unsupported`] as a DataFusion error.
    pub fn unsupported(what: impl Into<String>) -> DataFusionError {
        PlanError::Unsupported(what.into()).into()
    }

    /// [`PlanError::Query`] as a DataFusion error.
    pub fn query(what: impl Into<String>) -> DataFusionError {
        PlanError::Query(what.into()).into()
    }

    /// [`PlanError::Data`] as a DataFusion error.
    pub fn data(what: impl Into<String>) -> DataFusionError {
        PlanError::Data(what.into()).into()
    }

    /// [`PlanError::Internal`] as a DataFusion error.
    pub fn internal(what: impl Into<String>) -> DataFusionError {
        PlanError::Internal(what.into()).into()
    }

    /// The plan error inside `e`, if a plan error caused it (through DataFusion's
    /// context, shared and Arrow wrappers).
    pub fn find(e: &DataFusionError) -> Option<&PlanError> {
        match e {
            DataFusionError::External(inner) => inner.downcast_ref::<PlanError>(),
            DataFusionError::Context(_, inner) => PlanError::find(inner),
            DataFusionError::Shared(inner) => PlanError::find(inner),
            DataFusionError::ArrowError(inner, _) => match inner.as_ref() {
                datafusion::arrow::error::ArrowError::ExternalError(inner) => inner
                    .downcast_ref::<DataFusionError>()
                    .and_then(PlanError::find)
                    .or_else(|| inner.downcast_ref::<PlanError>()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The sentence describing it.
    pub fn message(&self) -> &str {
        match self {
            PlanError::Unsupported(m)
            | PlanError::Query(m)
            | PlanError::Data(m)
            | PlanError::Internal(m) => m,
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for PlanError {}

impl From<PlanError> for DataFusionError {
    fn from(e: PlanError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_plan_error_is_found_through_datafusions_wrappers() {
        let e = PlanError::query("integer division by zero");
        assert_eq!(
            PlanError::find(&e),
            Some(&PlanError::Query("integer division by zero".into()))
        );
        let wrapped = DataFusionError::Shared(Arc::new(e.context("in a repartition")));
        assert!(matches!(
            PlanError::find(&wrapped),
            Some(PlanError::Query(_))
        ));
        assert_eq!(
            wrapped.find_root().to_string(),
            wrapped.find_root().to_string()
        );
        assert_eq!(PlanError::find(&DataFusionError::Plan("x".into())), None);
    }
}

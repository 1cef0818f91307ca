//! Reading the columns of a plan's answer (the service graph's, the insights'), where
//! a column missing or of another type is a fault of the engine, named with what the
//! answer is.

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use traceql_format::arrays::StrCol;

use super::EngineError;

/// A batch of an answer, and what the answer is (`the service graph`), for messages.
pub(crate) struct Answer<'a> {
    batch: &'a RecordBatch,
    what: &'static str,
}

impl<'a> Answer<'a> {
    /// The batch `batch` of the answer `what`.
    pub(crate) fn new(batch: &'a RecordBatch, what: &'static str) -> Self {
        Answer { batch, what }
    }

    /// Column `name`.
    fn array(&self, name: &str) -> Result<&'a ArrayRef, EngineError> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| EngineError::internal(format!("{} has no column `{name}`", self.what)))
    }

    /// Column `name` as a `T`, without converting it.
    pub(crate) fn column<T: 'static>(&self, name: &str) -> Result<&'a T, EngineError> {
        self.array(name)?
            .as_any()
            .downcast_ref::<T>()
            .ok_or_else(|| {
                EngineError::internal(format!("{}: column `{name}` has another type", self.what))
            })
    }

    /// Column `name`, text (plain or view strings).
    pub(crate) fn text(&self, name: &str) -> Result<StrCol<'a>, EngineError> {
        StrCol::new(self.array(name)?.as_ref(), name)
            .map_err(|e| EngineError::internal(format!("{}: {e}", self.what)))
    }

    /// Column `name` converted to `to`, as a `T` (the type of `to`).
    pub(crate) fn cast<T: Array + Clone + 'static>(
        &self,
        name: &str,
        to: DataType,
    ) -> Result<T, EngineError> {
        let array = cast(self.array(name)?, &to)
            .map_err(|e| EngineError::internal(format!("{}: {e}", self.what)))?;
        array.as_any().downcast_ref::<T>().cloned().ok_or_else(|| {
            EngineError::internal(format!("{}: column `{name}` is not {to}", self.what))
        })
    }
}

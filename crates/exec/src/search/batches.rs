//! Every span a search matches as Arrow record batches made straight from the plan's
//! rows, a batch for a batch, for programs that take all matches in columns (an
//! embedding service, a notebook): no traces are assembled, ranked or cut to a limit,
//! so the work is a few vectorised conversions per batch.
//!
//! The columns are those of [`SearchResults::record_batch`](super::SearchResults):
//! [`SPAN_COLUMNS`], then the span attributes the query shows, then the spanset
//! attributes, with the same names and content. Text columns (names, root names) keep
//! the type the scan gives them; attribute values are a dictionary of their text, one
//! dictionary per batch.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, DictionaryArray, FixedSizeBinaryArray, RecordBatch, StringArray,
    StringBuilder, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use datafusion::error::{DataFusionError, Result};
use traceql_format::ids::{push_hex, push_trace_id_hex};
use traceql_format::schema::columns as c;
use traceql_planner::lower::{ResultAttribute, SPANSET, SearchPlan};

use super::assemble::{Interned, ShownColumn};
use super::results::{SPAN_COLUMNS, attribute_columns};

/// Turns the rows of one search plan into answer batches (see the module docs).
pub(crate) struct SpanBatches {
    span_attributes: Vec<ResultAttribute>,
    spanset_attributes: Vec<ResultAttribute>,
    /// The names of the attribute columns, made unique beside [`SPAN_COLUMNS`].
    names: Vec<String>,
}

impl SpanBatches {
    /// The batches of the rows of `plan`.
    pub(crate) fn new(plan: &SearchPlan) -> SpanBatches {
        let attributes = plan.span_attributes.iter().chain(&plan.spanset_attributes);
        let names = attribute_columns(attributes.map(|attr| attr.name.as_str()));
        SpanBatches {
            span_attributes: plan.span_attributes.clone(),
            spanset_attributes: plan.spanset_attributes.clone(),
            names,
        }
    }

    /// The answer batch of `batch`, a batch of the plan's rows.
    pub(crate) fn convert(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let column = |name: &str| -> Result<&ArrayRef> {
            batch.column_by_name(name).ok_or_else(|| {
                DataFusionError::Internal(format!("search result lacks column `{name}`"))
            })
        };
        let ids = |name: &str, width: i32| -> Result<&FixedSizeBinaryArray> {
            column(name)?
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .filter(|a| a.value_length() == width)
                .ok_or_else(|| {
                    DataFusionError::Internal(format!(
                        "search result: `{name}` is not {width} bytes wide"
                    ))
                })
        };
        let times = |name: &str| -> Result<ArrayRef> {
            let values = u64s(column(name)?)?;
            let nanos: TimestampNanosecondArray = values.unary(|v| v as i64);
            Ok(Arc::new(nanos.with_timezone("UTC")))
        };
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(hex_column(ids(c::TRACE_ID, 16)?, push_trace_id_hex)?),
            Arc::clone(column(c::TRACE_ROOT_SERVICE)?),
            Arc::clone(column(c::TRACE_ROOT_NAME)?),
            times(c::TRACE_START_UNIX_NANO)?,
            Arc::new(u64s(column(c::TRACE_DURATION_NANO)?)?.clone()),
            cast(column(SPANSET)?, &DataType::UInt32)?,
            Arc::new(hex_column(ids(c::SPAN_ID, 8)?, push_hex)?),
            Arc::clone(column(c::NAME)?),
            times(c::START_UNIX_NANO)?,
            Arc::new(u64s(column(c::DURATION_NANO)?)?.clone()),
        ];
        let attributes = self.span_attributes.iter().chain(&self.spanset_attributes);
        // Values are numbered within the batch, and each is written out once.
        let mut interned = Interned::default();
        let mut keys = Vec::new();
        for (slot, attr) in attributes.enumerate() {
            let shown = ShownColumn::of(batch, attr)?;
            let numbers = (0..batch.num_rows())
                .map(|row| interned.value(attr, slot, &shown, row))
                .collect::<Result<Vec<_>>>()?;
            keys.push(UInt32Array::from(numbers));
        }
        let mut texts = StringBuilder::new();
        for value in interned.values() {
            texts.append_value(value.to_string());
        }
        let texts: ArrayRef = Arc::new(texts.finish());
        for keys in keys {
            arrays.push(Arc::new(DictionaryArray::<UInt32Type>::try_new(
                keys,
                Arc::clone(&texts),
            )?));
        }
        let fields: Vec<Field> = SPAN_COLUMNS
            .iter()
            .map(|name| name.to_string())
            .chain(self.names.iter().cloned())
            .zip(&arrays)
            .map(|(name, array)| Field::new(name, array.data_type().clone(), true))
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        Ok(RecordBatch::try_new(schema, arrays)?)
    }
}

/// `array` as unsigned 64-bit integers.
fn u64s(array: &ArrayRef) -> Result<&UInt64Array> {
    array.as_any().downcast_ref::<UInt64Array>().ok_or_else(|| {
        DataFusionError::Internal(format!(
            "search result: expected unsigned integers, found {}",
            array.data_type()
        ))
    })
}

/// The ids of `ids` as text, each written by `write` (`push_hex`, `push_trace_id_hex`).
fn hex_column(ids: &FixedSizeBinaryArray, write: fn(&[u8], &mut Vec<u8>)) -> Result<StringArray> {
    let mut text = Vec::with_capacity(ids.len() * ids.value_length() as usize * 2);
    let mut ends = Vec::with_capacity(ids.len() + 1);
    ends.push(0i32);
    for row in 0..ids.len() {
        write(ids.value(row), &mut text);
        let end = i32::try_from(text.len()).map_err(|_| {
            DataFusionError::Internal("search result: ids too long for one batch".into())
        })?;
        ends.push(end);
    }
    let offsets = OffsetBuffer::new(ends.into());
    Ok(StringArray::try_new(
        offsets,
        Buffer::from_vec(text),
        ids.nulls().cloned(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_hex_as_the_other_answers_write_them() {
        use traceql_format::ids::{hex, trace_id_hex};
        let traces = [
            [0u8; 16],
            [0, 0, 1, 0xab, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff],
            [0x0f; 16],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10],
        ];
        let ids = FixedSizeBinaryArray::try_from_iter(traces.into_iter()).unwrap();
        let text = hex_column(&ids, push_trace_id_hex).unwrap();
        for (row, id) in traces.iter().enumerate() {
            assert_eq!(text.value(row), trace_id_hex(id));
        }
        let spans = [[0u8, 1, 2, 3, 4, 5, 6, 0xef], [0; 8]];
        let ids = FixedSizeBinaryArray::try_from_iter(spans.into_iter()).unwrap();
        let text = hex_column(&ids, push_hex).unwrap();
        for (row, id) in spans.iter().enumerate() {
            assert_eq!(text.value(row), hex(id));
        }
    }
}

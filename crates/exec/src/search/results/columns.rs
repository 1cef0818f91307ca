//! Search results as Arrow record batches: one row per shown span, for programs that
//! take columns (pandas, Polars, DuckDB through Arrow IPC, an embedding service).
//!
//! Strings that repeat (span names, root names, attribute values) are dictionary
//! columns whose dictionary is the results' own table of those strings, shared by every
//! batch, so a batch costs a few numbers per span beside its ids.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, DictionaryArray, RecordBatch, StringArray, StringBuilder, TimestampNanosecondArray,
    UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, UInt32Type};
use datafusion::arrow::error::ArrowError;
use traceql_format::ids::{span_id_hex, trace_id_hex};

use super::{NONE, SearchResults};

/// The columns every batch of [`SearchResults::record_batches`] starts with; the span
/// attributes the query shows follow (one column each, named as the query names them,
/// values as text), then the spanset attributes (`by()` values and aggregates, as
/// text).
pub const SPAN_COLUMNS: [&str; 10] = [
    "trace_id",
    "root_service",
    "root_name",
    "trace_start",
    "trace_duration_nano",
    "spanset",
    "span_id",
    "name",
    "start",
    "duration_nano",
];

/// The shape of the batches of some results, and the shared dictionaries. Results of
/// one plan (the windows of a streamed search) have one schema.
pub struct Columns {
    schema: SchemaRef,
    /// The results' names (span names, root names), the dictionary of name columns.
    names: ArrayRef,
    /// The results' attribute values as text, the dictionary of attribute columns.
    values: ArrayRef,
    /// The spanset attribute keys, in column order.
    set_keys: Vec<String>,
}

fn dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The column names of attributes shown as `names`, in order, after [`SPAN_COLUMNS`]:
/// each name, with `_` added while it is taken.
pub(in crate::search) fn attribute_columns<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut taken: Vec<String> = SPAN_COLUMNS.iter().map(|c| c.to_string()).collect();
    let first = taken.len();
    for name in names {
        let mut name = name.to_string();
        while taken.contains(&name) {
            name.push('_');
        }
        taken.push(name);
    }
    taken.split_off(first)
}

impl SearchResults {
    /// The schema and dictionaries of these results' record batches.
    pub fn columns(&self) -> Columns {
        let mut fields = vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("root_service", dictionary(), true),
            Field::new("root_name", dictionary(), true),
            Field::new("trace_start", timestamp(), false),
            Field::new("trace_duration_nano", DataType::UInt64, false),
            Field::new("spanset", DataType::UInt32, false),
            Field::new("span_id", DataType::Utf8, false),
            Field::new("name", dictionary(), true),
            Field::new("start", timestamp(), false),
            Field::new("duration_nano", DataType::UInt64, false),
        ];
        let attributes = self.span_attributes.iter().chain(&self.spanset_attributes);
        let mut names = attribute_columns(attributes.map(String::as_str)).into_iter();
        for name in names.by_ref().take(self.span_attributes.len()) {
            fields.push(Field::new(name, dictionary(), true));
        }
        for name in names {
            fields.push(Field::new(name, DataType::Utf8, true));
        }
        let set_keys = self.spanset_attributes.clone();
        let names = StringArray::from_iter_values(self.names.items.iter().map(|n| n.as_ref()));
        let values = StringArray::from_iter_values(self.values.items.iter().map(|v| v.to_string()));
        Columns {
            schema: Arc::new(Schema::new(fields)),
            names: Arc::new(names),
            values: Arc::new(values),
            set_keys,
        }
    }

    /// The shown spans of the traces at `positions`, one row each, in order, with the
    /// schema and dictionaries of `columns` (from [`Self::columns`]).
    pub fn record_batch(
        &self,
        columns: &Columns,
        positions: Range<usize>,
    ) -> Result<RecordBatch, ArrowError> {
        let end = positions.end.min(self.traces.len());
        let traces = &self.traces[positions.start.min(end)..end];
        let rows: usize = traces
            .iter()
            .flat_map(|t| &t.spansets)
            .map(|s| s.spans.len())
            .sum();
        let mut trace_id = StringBuilder::with_capacity(rows, rows * 32);
        let mut root_service = Vec::with_capacity(rows);
        let mut root_name = Vec::with_capacity(rows);
        let mut trace_start = Vec::with_capacity(rows);
        let mut trace_duration = Vec::with_capacity(rows);
        let mut spanset = Vec::with_capacity(rows);
        let mut span_id = StringBuilder::with_capacity(rows, rows * 16);
        let mut name = Vec::with_capacity(rows);
        let mut start = Vec::with_capacity(rows);
        let mut duration = Vec::with_capacity(rows);
        let mut attributes: Vec<Vec<Option<u32>>> =
            vec![Vec::with_capacity(rows); self.span_attributes.len()];
        let mut set_attributes: Vec<StringBuilder> = columns
            .set_keys
            .iter()
            .map(|_| StringBuilder::with_capacity(rows, rows * 8))
            .collect();
        // A key may name several columns (`| avg(duration) > 1ms | avg(duration) > 2ms`).
        let mut key_columns: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, key) in columns.set_keys.iter().enumerate() {
            key_columns.entry(key.as_str()).or_default().push(i);
        }
        let name_key = |n: u32| (n != NONE).then_some(n);
        let mut row: Vec<Option<u32>> = vec![None; self.span_attributes.len()];
        let mut hex = [0u8; 16];
        for t in traces {
            let id = trace_id_hex(&t.id);
            for (index, set) in t.spansets.iter().enumerate() {
                let mut texts: Vec<Option<String>> = vec![None; columns.set_keys.len()];
                for a in &set.attributes {
                    for &i in key_columns.get(a.key.as_str()).into_iter().flatten() {
                        texts[i] = Some(a.value.to_string());
                    }
                }
                for span in &set.spans {
                    trace_id.append_value(&id);
                    root_service.push(name_key(t.root_service));
                    root_name.push(name_key(t.root_name));
                    trace_start.push(t.start as i64);
                    trace_duration.push(t.end - t.start);
                    spanset.push(index as u32);
                    span_id.append_value(span_id_hex(&span.id, &mut hex));
                    name.push(name_key(span.name));
                    start.push(span.start as i64);
                    duration.push(span.duration);
                    row.fill(None);
                    for &(key, value) in span.attributes.iter() {
                        row[key as usize] = Some(value);
                    }
                    for (column, value) in attributes.iter_mut().zip(&row) {
                        column.push(*value);
                    }
                    for (builder, text) in set_attributes.iter_mut().zip(&texts) {
                        builder.append_option(text.as_deref());
                    }
                }
            }
        }
        let names = |keys: Vec<Option<u32>>| -> Result<ArrayRef, ArrowError> {
            let keys = UInt32Array::from(keys);
            Ok(Arc::new(DictionaryArray::<UInt32Type>::try_new(
                keys,
                Arc::clone(&columns.names),
            )?))
        };
        let utc = |values: Vec<i64>| -> ArrayRef {
            Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC"))
        };
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(trace_id.finish()),
            names(root_service)?,
            names(root_name)?,
            utc(trace_start),
            Arc::new(UInt64Array::from(trace_duration)),
            Arc::new(UInt32Array::from(spanset)),
            Arc::new(span_id.finish()),
            names(name)?,
            utc(start),
            Arc::new(UInt64Array::from(duration)),
        ];
        for keys in attributes {
            arrays.push(Arc::new(DictionaryArray::<UInt32Type>::try_new(
                UInt32Array::from(keys),
                Arc::clone(&columns.values),
            )?));
        }
        for mut builder in set_attributes {
            arrays.push(Arc::new(builder.finish()));
        }
        RecordBatch::try_new(Arc::clone(&columns.schema), arrays)
    }
}

impl Columns {
    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

//! Decodes a block back into spans (the inverse of the writer).

use std::sync::Arc;

use arrow::array::{
    Array, BooleanArray, FixedSizeBinaryArray, Float64Array, Int8Array, Int64Array, ListArray,
    RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::meta::{BlockMeta, TypedColumn};
use super::schema::*;
use crate::arrays::{column, downcast, list_values};
use crate::entries::{Elements, EntryList};
use crate::error::{FormatError, Result};
use crate::model::{Event, Link, Resource, Scope, Span};
use crate::schema::columns;
use crate::value::{KeyValue, Value, ValueType};

/// Reads every span of a block, in stored order (trace order, then start time).
pub fn decode_block(data: Bytes, meta: &BlockMeta) -> Result<Vec<Span>> {
    let mut spans = Vec::with_capacity(meta.spans as usize);
    decode_block_batches(data, meta, |mut batch| spans.append(&mut batch))?;
    Ok(spans)
}

/// Reads every span of a block in stored order, handing them to `each` a batch
/// (a few thousand) at a time, so the block's spans are never all in memory.
pub fn decode_block_batches(
    data: Bytes,
    meta: &BlockMeta,
    mut each: impl FnMut(Vec<Span>),
) -> Result<()> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|b| b.build())
        .map_err(|e| FormatError::corrupt(format!("not a readable Parquet block: {e}")))?;
    for batch in reader {
        let batch = batch.map_err(|e| FormatError::corrupt(format!("corrupt block data: {e}")))?;
        let mut spans = Vec::with_capacity(batch.num_rows());
        decode_batch(&batch, &meta.typed_columns, &mut spans)?;
        each(spans);
    }
    Ok(())
}

fn id<const N: usize>(a: &FixedSizeBinaryArray, i: usize) -> Result<[u8; N]> {
    a.value(i).try_into().map_err(|_| {
        FormatError::corrupt(format!("id of {} bytes, expected {N}", a.value(i).len()))
    })
}

fn entry_list<'a>(batch: &'a RecordBatch, name: &str) -> Result<EntryList<'a>> {
    EntryList::new(column::<ListArray>(batch, name)?)
}

/// Decodes rows of a block (or of the span table, whose typed columns are `typed`)
/// into spans, appended to `out`.
pub fn decode_batch(batch: &RecordBatch, typed: &[TypedColumn], out: &mut Vec<Span>) -> Result<()> {
    let trace_id = column::<FixedSizeBinaryArray>(batch, columns::TRACE_ID)?;
    let span_id = column::<FixedSizeBinaryArray>(batch, columns::SPAN_ID)?;
    let parent = column::<FixedSizeBinaryArray>(batch, columns::PARENT_SPAN_ID)?;
    let name = column::<StringArray>(batch, columns::NAME)?;
    let kind = column::<Int8Array>(batch, columns::KIND)?;
    let status_code = column::<Int8Array>(batch, columns::STATUS_CODE)?;
    let status_message = column::<StringArray>(batch, columns::STATUS_MESSAGE)?;
    let start = column::<UInt64Array>(batch, columns::START_UNIX_NANO)?;
    let duration = column::<UInt64Array>(batch, columns::DURATION_NANO)?;
    let scope_name = column::<StringArray>(batch, columns::INSTRUMENTATION_NAME)?;
    let scope_version = column::<StringArray>(batch, columns::INSTRUMENTATION_VERSION)?;
    let trace_state = column::<StringArray>(batch, TRACE_STATE)?;
    let flags = column::<UInt32Array>(batch, FLAGS)?;
    let dropped_attributes = column::<UInt32Array>(batch, DROPPED_ATTRIBUTES_COUNT)?;
    let dropped_events = column::<UInt32Array>(batch, DROPPED_EVENTS_COUNT)?;
    let dropped_links = column::<UInt32Array>(batch, DROPPED_LINKS_COUNT)?;
    let resource_dropped = column::<UInt32Array>(batch, RESOURCE_DROPPED_ATTRIBUTES_COUNT)?;
    let resource_schema_url = column::<StringArray>(batch, RESOURCE_SCHEMA_URL)?;
    let scope_dropped = column::<UInt32Array>(batch, INSTRUMENTATION_DROPPED_ATTRIBUTES_COUNT)?;
    let scope_schema_url = column::<StringArray>(batch, INSTRUMENTATION_SCHEMA_URL)?;
    let span_attrs = entry_list(batch, SPAN_ATTRIBUTES)?;
    let resource_attrs = entry_list(batch, RESOURCE_ATTRIBUTES)?;
    let scope_attrs = entry_list(batch, INSTRUMENTATION_ATTRIBUTES)?;
    let events = Elements::new(column::<ListArray>(batch, EVENTS)?)?;
    let event_time = events.field::<UInt64Array>("time_unix_nano")?;
    let event_name = events.field::<StringArray>("name")?;
    let event_dropped = events.field::<UInt32Array>("dropped_attributes_count")?;
    let links = Elements::new(column::<ListArray>(batch, LINKS)?)?;
    let link_trace = links.field::<FixedSizeBinaryArray>("trace_id")?;
    let link_span = links.field::<FixedSizeBinaryArray>("span_id")?;
    let link_state = links.field::<StringArray>("trace_state")?;
    let link_flags = links.field::<UInt32Array>("flags")?;
    let link_dropped = links.field::<UInt32Array>("dropped_attributes_count")?;
    let typed: Vec<(&str, &str, ValueType, &dyn Array)> = typed
        .iter()
        .map(|c| {
            let array = batch.column_by_name(&c.name).ok_or_else(|| {
                FormatError::corrupt(format!(
                    "typed column `{}` listed in meta.json is missing",
                    c.name
                ))
            })?;
            Ok((
                c.scope.as_str(),
                c.key.as_str(),
                c.value_type,
                array.as_ref(),
            ))
        })
        .collect::<Result<_>>()?;

    let mut last_resource: Option<Arc<Resource>> = None;
    let mut last_scope: Option<Arc<Scope>> = None;
    for row in 0..batch.num_rows() {
        let mut attributes = Vec::new();
        let mut resource_attributes = Vec::new();
        for (scope, key, value_type, array) in &typed {
            if let Some(value) = typed_value(*array, *value_type, row)? {
                let kv = KeyValue {
                    key: key.to_string(),
                    value,
                };
                if *scope == "span" {
                    attributes.push(kv)
                } else {
                    resource_attributes.push(kv)
                }
            }
        }
        span_attrs.read(row, &mut attributes)?;
        resource_attrs.read(row, &mut resource_attributes)?;
        let resource = Resource {
            attributes: resource_attributes,
            dropped_attributes_count: resource_dropped.value(row),
            schema_url: resource_schema_url.value(row).to_string(),
        };
        let resource = match last_resource.take() {
            Some(r) if *r == resource => r,
            _ => Arc::new(resource),
        };
        last_resource = Some(Arc::clone(&resource));
        let mut scope_attributes = Vec::new();
        scope_attrs.read(row, &mut scope_attributes)?;
        let scope = Scope {
            name: scope_name.value(row).to_string(),
            version: scope_version.value(row).to_string(),
            attributes: scope_attributes,
            dropped_attributes_count: scope_dropped.value(row),
            schema_url: scope_schema_url.value(row).to_string(),
        };
        let scope = match last_scope.take() {
            Some(s) if *s == scope => s,
            _ => Arc::new(scope),
        };
        last_scope = Some(Arc::clone(&scope));

        let span_events = events
            .range(row)
            .map(|e| {
                let mut attributes = Vec::new();
                events.attributes.read(e, &mut attributes)?;
                Ok(Event {
                    time_unix_nano: event_time.value(e),
                    name: event_name.value(e).to_string(),
                    attributes,
                    dropped_attributes_count: event_dropped.value(e),
                })
            })
            .collect::<Result<_>>()?;
        let span_links = links
            .range(row)
            .map(|l| {
                let mut attributes = Vec::new();
                links.attributes.read(l, &mut attributes)?;
                Ok(Link {
                    trace_id: id(link_trace, l)?,
                    span_id: id(link_span, l)?,
                    trace_state: link_state.value(l).to_string(),
                    flags: link_flags.value(l),
                    attributes,
                    dropped_attributes_count: link_dropped.value(l),
                })
            })
            .collect::<Result<_>>()?;
        let start_unix_nano = start.value(row);
        out.push(Span {
            trace_id: id(trace_id, row)?,
            span_id: id(span_id, row)?,
            parent_span_id: if parent.is_null(row) {
                None
            } else {
                Some(id(parent, row)?)
            },
            trace_state: trace_state.value(row).to_string(),
            flags: flags.value(row),
            name: name.value(row).to_string(),
            kind: kind.value(row),
            start_unix_nano,
            end_unix_nano: start_unix_nano + duration.value(row),
            attributes,
            dropped_attributes_count: dropped_attributes.value(row),
            events: span_events,
            dropped_events_count: dropped_events.value(row),
            links: span_links,
            dropped_links_count: dropped_links.value(row),
            status_code: status_code.value(row),
            status_message: status_message.value(row).to_string(),
            resource,
            scope,
        });
    }
    Ok(())
}

/// The value of a typed attribute column at `row`, if any.
fn typed_value(array: &dyn Array, t: ValueType, row: usize) -> Result<Option<Value>> {
    if array.is_null(row) {
        return Ok(None);
    }
    // Called for every row: the description is a constant, not formatted each time.
    const WHAT: &str = "typed attribute column";
    let list = || downcast::<ListArray>(array, WHAT);
    Ok(Some(match t {
        ValueType::Str | ValueType::Opaque => {
            Value::Str(downcast::<StringArray>(array, WHAT)?.value(row).to_string())
        }
        ValueType::Int => Value::Int(downcast::<Int64Array>(array, WHAT)?.value(row)),
        ValueType::Float => Value::Float(downcast::<Float64Array>(array, WHAT)?.value(row)),
        ValueType::Bool => Value::Bool(downcast::<BooleanArray>(array, WHAT)?.value(row)),
        ValueType::StrArray => {
            Value::StrArray(list_values::<StringArray, _>(list()?, row, |a, j| {
                a.value(j).to_string()
            })?)
        }
        ValueType::IntArray => {
            Value::IntArray(list_values::<Int64Array, _>(list()?, row, |a, j| {
                a.value(j)
            })?)
        }
        ValueType::FloatArray => {
            Value::FloatArray(list_values::<Float64Array, _>(list()?, row, |a, j| {
                a.value(j)
            })?)
        }
        ValueType::BoolArray => {
            Value::BoolArray(list_values::<BooleanArray, _>(list()?, row, |a, j| {
                a.value(j)
            })?)
        }
    }))
}

//! Decodes a block back into spans (the inverse of the writer).

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    Array, BooleanArray, FixedSizeBinaryArray, Float64Array, Int8Array, Int64Array, ListArray,
    RecordBatch, StringArray, StructArray, UInt32Array, UInt64Array,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use traceql_planner::schema::columns;

use super::entries::{EntryListReader, list_values};
use super::meta::{BlockMeta, TypedColumn};
use super::schema::*;
use crate::model::{Event, KeyValue, Link, Resource, Scope, Span, Value, ValueType};

/// Reads every span of a block, in stored order (trace id, then start time).
pub fn decode_block(data: Bytes, meta: &BlockMeta) -> Result<Vec<Span>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|b| b.build())
        .map_err(|e| format!("not a readable Parquet block: {e}"))?;
    let mut spans = Vec::with_capacity(meta.spans as usize);
    for batch in reader {
        let batch = batch.map_err(|e| format!("corrupt block data: {e}"))?;
        decode_batch(&batch, &meta.typed_columns, &mut spans)?;
    }
    Ok(spans)
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("block column `{name}` is missing or has the wrong type"))
}

fn field<'a, T: 'static>(s: &'a StructArray, name: &str) -> Result<&'a T, String> {
    s.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("block field `{name}` is missing or has the wrong type"))
}

fn id<const N: usize>(a: &FixedSizeBinaryArray, i: usize) -> Result<[u8; N], String> {
    a.value(i)
        .try_into()
        .map_err(|_| format!("id of {} bytes, expected {N}", a.value(i).len()))
}

/// Decodes rows of a block (or of the span table, whose typed columns are `typed`)
/// into spans, appended to `out`.
pub fn decode_batch(
    batch: &RecordBatch,
    typed: &[TypedColumn],
    out: &mut Vec<Span>,
) -> Result<(), String> {
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
    let span_attrs = EntryListReader::new(
        batch
            .column_by_name(SPAN_ATTRIBUTES)
            .ok_or("no span attributes")?
            .as_ref(),
    )?;
    let resource_attrs = EntryListReader::new(
        batch
            .column_by_name(RESOURCE_ATTRIBUTES)
            .ok_or("no resource attributes")?
            .as_ref(),
    )?;
    let scope_attrs = EntryListReader::new(
        batch
            .column_by_name(INSTRUMENTATION_ATTRIBUTES)
            .ok_or("no scope attributes")?
            .as_ref(),
    )?;
    let events = column::<ListArray>(batch, EVENTS)?;
    let event_items = events
        .values()
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or("events are not structs")?;
    let event_time = field::<UInt64Array>(event_items, "time_unix_nano")?;
    let event_name = field::<StringArray>(event_items, "name")?;
    let event_attrs = EntryListReader::new(
        event_items
            .column_by_name("attributes")
            .ok_or("no event attributes")?
            .as_ref(),
    )?;
    let event_dropped = field::<UInt32Array>(event_items, "dropped_attributes_count")?;
    let links = column::<ListArray>(batch, LINKS)?;
    let link_items = links
        .values()
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or("links are not structs")?;
    let link_trace = field::<FixedSizeBinaryArray>(link_items, "trace_id")?;
    let link_span = field::<FixedSizeBinaryArray>(link_items, "span_id")?;
    let link_state = field::<StringArray>(link_items, "trace_state")?;
    let link_flags = field::<UInt32Array>(link_items, "flags")?;
    let link_attrs = EntryListReader::new(
        link_items
            .column_by_name("attributes")
            .ok_or("no link attributes")?
            .as_ref(),
    )?;
    let link_dropped = field::<UInt32Array>(link_items, "dropped_attributes_count")?;
    let typed: Vec<(&str, &str, ValueType, &dyn Array)> = typed
        .iter()
        .map(|c| {
            let array = batch.column_by_name(&c.name).ok_or_else(|| {
                format!("typed column `{}` listed in meta.json is missing", c.name)
            })?;
            Ok((
                c.scope.as_str(),
                c.key.as_str(),
                c.value_type,
                array.as_ref(),
            ))
        })
        .collect::<Result<_, String>>()?;

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

        let offsets = events.value_offsets();
        let span_events = (offsets[row] as usize..offsets[row + 1] as usize)
            .map(|e| {
                let mut attributes = Vec::new();
                event_attrs.read(e, &mut attributes)?;
                Ok(Event {
                    time_unix_nano: event_time.value(e),
                    name: event_name.value(e).to_string(),
                    attributes,
                    dropped_attributes_count: event_dropped.value(e),
                })
            })
            .collect::<Result<_, String>>()?;
        let offsets = links.value_offsets();
        let span_links = (offsets[row] as usize..offsets[row + 1] as usize)
            .map(|l| {
                let mut attributes = Vec::new();
                link_attrs.read(l, &mut attributes)?;
                Ok(Link {
                    trace_id: id(link_trace, l)?,
                    span_id: id(link_span, l)?,
                    trace_state: link_state.value(l).to_string(),
                    flags: link_flags.value(l),
                    attributes,
                    dropped_attributes_count: link_dropped.value(l),
                })
            })
            .collect::<Result<_, String>>()?;
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
fn typed_value(array: &dyn Array, t: ValueType, row: usize) -> Result<Option<Value>, String> {
    if array.is_null(row) {
        return Ok(None);
    }
    let cast = || format!("typed column has the wrong type for {}", t.name());
    let any = array.as_any();
    Ok(Some(match t {
        ValueType::Str | ValueType::Opaque => Value::Str(
            any.downcast_ref::<StringArray>()
                .ok_or_else(cast)?
                .value(row)
                .to_string(),
        ),
        ValueType::Int => Value::Int(
            any.downcast_ref::<Int64Array>()
                .ok_or_else(cast)?
                .value(row),
        ),
        ValueType::Float => Value::Float(
            any.downcast_ref::<Float64Array>()
                .ok_or_else(cast)?
                .value(row),
        ),
        ValueType::Bool => Value::Bool(
            any.downcast_ref::<BooleanArray>()
                .ok_or_else(cast)?
                .value(row),
        ),
        ValueType::StrArray => Value::StrArray(list_values::<StringArray, _>(
            list(any).ok_or_else(cast)?,
            row,
            |a, j| a.value(j).to_string(),
        )?),
        ValueType::IntArray => Value::IntArray(list_values::<Int64Array, _>(
            list(any).ok_or_else(cast)?,
            row,
            |a, j| a.value(j),
        )?),
        ValueType::FloatArray => Value::FloatArray(list_values::<Float64Array, _>(
            list(any).ok_or_else(cast)?,
            row,
            |a, j| a.value(j),
        )?),
        ValueType::BoolArray => Value::BoolArray(list_values::<BooleanArray, _>(
            list(any).ok_or_else(cast)?,
            row,
            |a, j| a.value(j),
        )?),
    }))
}

fn list(any: &dyn std::any::Any) -> Option<&ListArray> {
    any.downcast_ref::<ListArray>()
}

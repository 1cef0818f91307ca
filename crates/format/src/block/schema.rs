//! The physical schema of a traceql block: the logical span table's fixed columns,
//! columns that make the block lossless, the block's typed attribute columns, the
//! fallback attribute lists, events and links. `docs/format.md` documents it.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::meta::TypedColumn;
use crate::schema::{
    element_list_type, entry_list_type, event_fields, fixed_span_schema, link_fields,
    typed_column_type,
};

/// W3C trace state of the span.
pub const TRACE_STATE: &str = "trace_state";
/// Span flags.
pub const FLAGS: &str = "flags";
/// Span attributes the producer dropped.
pub const DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";
/// Span events the producer dropped.
pub const DROPPED_EVENTS_COUNT: &str = "dropped_events_count";
/// Span links the producer dropped.
pub const DROPPED_LINKS_COUNT: &str = "dropped_links_count";
/// Resource attributes the producer dropped.
pub const RESOURCE_DROPPED_ATTRIBUTES_COUNT: &str = "resource_dropped_attributes_count";
/// Schema URL of the resource.
pub const RESOURCE_SCHEMA_URL: &str = "resource_schema_url";
/// Scope attributes the producer dropped.
pub const INSTRUMENTATION_DROPPED_ATTRIBUTES_COUNT: &str =
    "instrumentation_dropped_attributes_count";
/// Schema URL of the scope.
pub const INSTRUMENTATION_SCHEMA_URL: &str = "instrumentation_schema_url";
pub use crate::schema::columns::{
    EVENTS, INSTRUMENTATION_ATTRIBUTES, LINKS, RESOURCE_ATTRIBUTES, SPAN_ATTRIBUTES,
};

/// The schema of a block with these typed columns.
pub fn block_schema(typed: &[TypedColumn]) -> SchemaRef {
    let mut fields: Vec<Field> = fixed_span_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let u32_field = |name: &str| Field::new(name, DataType::UInt32, false);
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    fields.extend([
        utf8(TRACE_STATE),
        u32_field(FLAGS),
        u32_field(DROPPED_ATTRIBUTES_COUNT),
        u32_field(DROPPED_EVENTS_COUNT),
        u32_field(DROPPED_LINKS_COUNT),
        u32_field(RESOURCE_DROPPED_ATTRIBUTES_COUNT),
        utf8(RESOURCE_SCHEMA_URL),
        u32_field(INSTRUMENTATION_DROPPED_ATTRIBUTES_COUNT),
        utf8(INSTRUMENTATION_SCHEMA_URL),
    ]);
    fields.extend(
        typed
            .iter()
            .map(|c| Field::new(&c.name, typed_column_type(c.value_type), true)),
    );
    fields.extend([
        Field::new(SPAN_ATTRIBUTES, entry_list_type(), false),
        Field::new(RESOURCE_ATTRIBUTES, entry_list_type(), false),
        Field::new(INSTRUMENTATION_ATTRIBUTES, entry_list_type(), false),
        Field::new(EVENTS, element_list_type(event_fields()), false),
        Field::new(LINKS, element_list_type(link_fields()), false),
    ]);
    Arc::new(Schema::new(fields))
}

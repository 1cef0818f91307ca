//! The logical span table: one row per span, with trace-level columns repeated on each
//! row, typed columns for frequent attributes, a fallback list per scope, events and
//! links. Every kind of block presents its spans in this shape (see [`crate::kind`]);
//! the planner plans against it and nothing else.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use traceql_parser::ast::AttributeScope;

use crate::value::ValueType;

/// Column names of the fixed part of the span table.
pub mod columns {
    /// Trace id, 16 bytes.
    pub const TRACE_ID: &str = "trace_id";
    /// Span id, 8 bytes.
    pub const SPAN_ID: &str = "span_id";
    /// Parent span id, 8 bytes; null for a root span.
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    /// Span name.
    pub const NAME: &str = "name";
    /// OTLP span kind (0 unspecified … 5 consumer).
    pub const KIND: &str = "kind";
    /// OTLP status code (0 unset, 1 ok, 2 error).
    pub const STATUS_CODE: &str = "status_code";
    /// Status message, empty when none.
    pub const STATUS_MESSAGE: &str = "status_message";
    /// Span start, unix nanoseconds.
    pub const START_UNIX_NANO: &str = "start_unix_nano";
    /// Span duration, nanoseconds.
    pub const DURATION_NANO: &str = "duration_nano";
    /// Nested-set number on entry in a depth-first walk of the trace.
    pub const NESTED_SET_LEFT: &str = "nested_set_left";
    /// Nested-set number on exit.
    pub const NESTED_SET_RIGHT: &str = "nested_set_right";
    /// The parent's `nested_set_left`; -1 for roots.
    pub const NESTED_SET_PARENT: &str = "nested_set_parent";
    /// The number of the span's children in its trace (`span:childCount`); null in
    /// blocks written before format version 2.
    pub const CHILD_COUNT: &str = "child_count";
    /// `service.name` of the root span's resource.
    pub const TRACE_ROOT_SERVICE: &str = "trace_root_service";
    /// Name of the root span.
    pub const TRACE_ROOT_NAME: &str = "trace_root_name";
    /// Earliest span start of the trace, unix nanoseconds.
    pub const TRACE_START_UNIX_NANO: &str = "trace_start_unix_nano";
    /// Latest span end minus earliest span start, nanoseconds.
    pub const TRACE_DURATION_NANO: &str = "trace_duration_nano";
    /// Instrumentation scope name.
    pub const INSTRUMENTATION_NAME: &str = "instrumentation_name";
    /// Instrumentation scope version.
    pub const INSTRUMENTATION_VERSION: &str = "instrumentation_version";
    /// Span attributes without a typed column (a list of attribute entries).
    pub const SPAN_ATTRIBUTES: &str = "span_attributes";
    /// Resource attributes without a typed column (a list of attribute entries).
    pub const RESOURCE_ATTRIBUTES: &str = "resource_attributes";
    /// Instrumentation scope attributes (a list of attribute entries).
    pub const INSTRUMENTATION_ATTRIBUTES: &str = "instrumentation_attributes";
    /// Span events: a list of `{time_unix_nano, name, attributes, …}`.
    pub const EVENTS: &str = "events";
    /// Span links: a list of `{trace_id, span_id, …, attributes, …}`.
    pub const LINKS: &str = "links";
}

/// The order of rows in a block, ascending: by trace start, then trace id. All spans of
/// a trace are therefore together (the span-set operators need that), and blocks, row
/// groups and pages cover stretches of time (time ranges and newest-first searches
/// read little).
pub const TRACE_ORDER: [&str; 2] = [columns::TRACE_START_UNIX_NANO, columns::TRACE_ID];

/// A typed attribute column of the span table: which attribute of which scope and
/// value type it holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TypedAttribute {
    /// `Span` or `Resource`.
    pub scope: AttributeScope,
    /// The attribute key.
    pub key: String,
    /// The type of its values.
    pub value_type: ValueType,
    /// The column name, e.g. `span.http.status_code:int` (see
    /// [`typed_attribute_column`]).
    pub column: String,
}

/// The prefix of typed and fallback attribute columns of a scope
/// (`span`, `resource`, `event`, `link`, `instrumentation`).
///
/// Unscoped attributes (`.x`) have no columns of their own: they read the span and
/// resource columns.
pub fn scope_prefix(scope: AttributeScope) -> Option<&'static str> {
    match scope {
        AttributeScope::Unscoped => None,
        AttributeScope::Span => Some("span"),
        AttributeScope::Resource => Some("resource"),
        AttributeScope::Event => Some("event"),
        AttributeScope::Link => Some("link"),
        AttributeScope::Instrumentation => Some("instrumentation"),
    }
}

/// The name of the typed column holding attribute `key` of `scope` with values of
/// `value_type`: `resource.service.name` for strings (no suffix),
/// `span.http.status_code:int` for other types (the type's name after `:`), so a name
/// means one type everywhere.
pub fn typed_attribute_column(
    scope: AttributeScope,
    key: &str,
    value_type: ValueType,
) -> Option<String> {
    let prefix = scope_prefix(scope)?;
    Some(match value_type {
        ValueType::Str => format!("{prefix}.{key}"),
        other => format!("{prefix}.{key}:{}", other.name()),
    })
}

/// The scope named by a column prefix or a `meta.json` scope field (`span`,
/// `resource`, …): the inverse of [`scope_prefix`].
pub fn scope_of_prefix(prefix: &str) -> Option<AttributeScope> {
    [
        AttributeScope::Span,
        AttributeScope::Resource,
        AttributeScope::Event,
        AttributeScope::Link,
        AttributeScope::Instrumentation,
    ]
    .into_iter()
    .find(|s| scope_prefix(*s) == Some(prefix))
}

/// The Arrow type of a typed attribute column holding values of `t`.
pub fn typed_column_type(t: ValueType) -> DataType {
    let list = |item| DataType::List(Arc::new(Field::new("item", item, true)));
    match t {
        ValueType::Str | ValueType::Opaque => DataType::Utf8,
        ValueType::Int => DataType::Int64,
        ValueType::Float => DataType::Float64,
        ValueType::Bool => DataType::Boolean,
        ValueType::StrArray => list(DataType::Utf8),
        ValueType::IntArray => list(DataType::Int64),
        ValueType::FloatArray => list(DataType::Float64),
        ValueType::BoolArray => list(DataType::Boolean),
    }
}

/// The fallback attribute column of a scope that has one on the span row: a list of
/// attribute entries (see [`attribute_entry_fields`]) for attributes without a typed
/// column. Event and link attributes live inside the `events` and `links` columns.
pub fn fallback_attribute_column(scope: AttributeScope) -> Option<&'static str> {
    match scope {
        AttributeScope::Span => Some(columns::SPAN_ATTRIBUTES),
        AttributeScope::Resource => Some(columns::RESOURCE_ATTRIBUTES),
        AttributeScope::Instrumentation => Some(columns::INSTRUMENTATION_ATTRIBUTES),
        AttributeScope::Unscoped | AttributeScope::Event | AttributeScope::Link => None,
    }
}

/// The fields of a value: `type` (the [`ValueType`] code); the scalar value in `str`,
/// `int`, `float` or `bool` (an opaque value's OTLP/JSON text in `str`); an array in
/// `strs`, `ints`, `floats` or `bools`. Attribute entries are a key and these; result
/// columns of attribute values (`select()`, `by()`) are these alone (see
/// [`value_column_type`]).
pub fn value_fields() -> Fields {
    let list = |name: &str, item: DataType| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", item, true))),
            true,
        )
    };
    Fields::from(vec![
        Field::new("type", DataType::Int8, false),
        Field::new("str", DataType::Utf8, true),
        Field::new("int", DataType::Int64, true),
        Field::new("float", DataType::Float64, true),
        Field::new("bool", DataType::Boolean, true),
        list("strs", DataType::Utf8),
        list("ints", DataType::Int64),
        list("floats", DataType::Float64),
        list("bools", DataType::Boolean),
    ])
}

/// The type of a column of attribute values, null for nil: a struct of
/// [`value_fields`].
pub fn value_column_type() -> DataType {
    DataType::Struct(value_fields())
}

/// The fields of one attribute entry: `key`, then the [`value_fields`].
pub fn attribute_entry_fields() -> Fields {
    let mut fields = vec![Arc::new(Field::new("key", DataType::Utf8, false))];
    fields.extend(value_fields().iter().cloned());
    Fields::from(fields)
}

/// The type of an attribute entry list column.
pub fn entry_list_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(attribute_entry_fields()),
        false,
    )))
}

/// The fields of an event.
pub fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new("time_unix_nano", DataType::UInt64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("attributes", entry_list_type(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
    ])
}

/// The fields of a link.
pub fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::FixedSizeBinary(8), false),
        Field::new("trace_state", DataType::Utf8, false),
        Field::new("flags", DataType::UInt32, false),
        Field::new("attributes", entry_list_type(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
    ])
}

/// The type of the `events` and `links` columns: a list of structs with `fields`.
pub fn element_list_type(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(fields),
        false,
    )))
}

/// The fixed columns every block has, in order.
pub fn fixed_span_schema() -> SchemaRef {
    use columns::*;
    let utf8 = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new(TRACE_ID, DataType::FixedSizeBinary(16), false),
        Field::new(SPAN_ID, DataType::FixedSizeBinary(8), false),
        Field::new(PARENT_SPAN_ID, DataType::FixedSizeBinary(8), true),
        utf8(NAME, false),
        Field::new(KIND, DataType::Int8, false),
        Field::new(STATUS_CODE, DataType::Int8, false),
        utf8(STATUS_MESSAGE, false),
        Field::new(START_UNIX_NANO, DataType::UInt64, false),
        Field::new(DURATION_NANO, DataType::UInt64, false),
        Field::new(NESTED_SET_LEFT, DataType::Int32, false),
        Field::new(NESTED_SET_RIGHT, DataType::Int32, false),
        Field::new(NESTED_SET_PARENT, DataType::Int32, false),
        Field::new(CHILD_COUNT, DataType::Int32, true),
        utf8(TRACE_ROOT_SERVICE, true),
        utf8(TRACE_ROOT_NAME, true),
        Field::new(TRACE_START_UNIX_NANO, DataType::UInt64, false),
        Field::new(TRACE_DURATION_NANO, DataType::UInt64, false),
        utf8(INSTRUMENTATION_NAME, true),
        utf8(INSTRUMENTATION_VERSION, true),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_unique() {
        let schema = fixed_span_schema();
        let mut names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), schema.fields().len());
    }

    #[test]
    fn attribute_columns_are_named_by_scope_and_key() {
        assert_eq!(
            typed_attribute_column(AttributeScope::Resource, "service.name", ValueType::Str)
                .as_deref(),
            Some("resource.service.name")
        );
        assert_eq!(
            typed_attribute_column(AttributeScope::Span, "retries", ValueType::Float).as_deref(),
            Some("span.retries:float")
        );
        assert_eq!(
            typed_attribute_column(AttributeScope::Unscoped, "x", ValueType::Int),
            None
        );
        assert_eq!(
            fallback_attribute_column(AttributeScope::Resource),
            Some("resource_attributes")
        );
        assert_eq!(fallback_attribute_column(AttributeScope::Event), None);
        assert_eq!(scope_of_prefix("resource"), Some(AttributeScope::Resource));
        assert_eq!(scope_of_prefix("nope"), None);
    }

    #[test]
    fn no_fixed_column_collides_with_an_attribute_column() {
        // Attribute columns always contain a '.', fixed columns never do.
        assert!(
            fixed_span_schema()
                .fields()
                .iter()
                .all(|f| !f.name().contains('.'))
        );
    }
}

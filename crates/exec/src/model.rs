//! The in-memory span model: what ingest produces, blocks store and readers return.
//!
//! It keeps every OTLP field, so OTLP → block → spans is lossless. Resources and
//! instrumentation scopes are shared between the spans that reference them.

use std::sync::Arc;

/// A 16-byte trace id.
pub type TraceId = [u8; 16];
/// An 8-byte span id.
pub type SpanId = [u8; 8];

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A non-empty array of strings.
    StrArray(Vec<String>),
    /// A non-empty array of integers.
    IntArray(Vec<i64>),
    /// A non-empty array of floats.
    FloatArray(Vec<f64>),
    /// A non-empty array of booleans.
    BoolArray(Vec<bool>),
    /// A value TraceQL cannot query (bytes, key-value lists, empty or mixed arrays),
    /// kept as its OTLP/JSON `AnyValue` text so nothing is lost.
    Opaque(String),
}

/// The kind of a [`Value`], as stored in the `type` field of attribute entries.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ValueType {
    /// [`Value::Str`]
    #[serde(rename = "string")]
    Str = 0,
    /// [`Value::Int`]
    #[serde(rename = "int")]
    Int = 1,
    /// [`Value::Float`]
    #[serde(rename = "float")]
    Float = 2,
    /// [`Value::Bool`]
    #[serde(rename = "bool")]
    Bool = 3,
    /// [`Value::StrArray`]
    #[serde(rename = "string[]")]
    StrArray = 4,
    /// [`Value::IntArray`]
    #[serde(rename = "int[]")]
    IntArray = 5,
    /// [`Value::FloatArray`]
    #[serde(rename = "float[]")]
    FloatArray = 6,
    /// [`Value::BoolArray`]
    #[serde(rename = "bool[]")]
    BoolArray = 7,
    /// [`Value::Opaque`]
    #[serde(rename = "opaque")]
    Opaque = 8,
}

impl ValueType {
    /// All types, by their stored code.
    pub const ALL: [ValueType; 9] = [
        ValueType::Str,
        ValueType::Int,
        ValueType::Float,
        ValueType::Bool,
        ValueType::StrArray,
        ValueType::IntArray,
        ValueType::FloatArray,
        ValueType::BoolArray,
        ValueType::Opaque,
    ];

    /// The type stored under `code`.
    pub fn from_code(code: i8) -> Option<ValueType> {
        Self::ALL.get(usize::try_from(code).ok()?).copied()
    }

    /// Short name, used in column names and `traceql blocks`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Str => "string",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::StrArray => "string[]",
            ValueType::IntArray => "int[]",
            ValueType::FloatArray => "float[]",
            ValueType::BoolArray => "bool[]",
            ValueType::Opaque => "opaque",
        }
    }
}

impl Value {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::Str,
            Value::Int(_) => ValueType::Int,
            Value::Float(_) => ValueType::Float,
            Value::Bool(_) => ValueType::Bool,
            Value::StrArray(_) => ValueType::StrArray,
            Value::IntArray(_) => ValueType::IntArray,
            Value::FloatArray(_) => ValueType::FloatArray,
            Value::BoolArray(_) => ValueType::BoolArray,
            Value::Opaque(_) => ValueType::Opaque,
        }
    }
}

/// A key and its value. Keys may repeat within one list (OTLP allows it).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    /// The attribute key.
    pub key: String,
    /// Its value.
    pub value: Value,
}

/// The entity that produced spans: a service instance with its attributes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    /// Resource attributes (`service.name`, `k8s.pod.name`, …).
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL of the resource.
    pub schema_url: String,
}

impl Resource {
    /// The first string `service.name`, if any.
    pub fn service_name(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find_map(|kv| match (&kv.value, kv.key.as_str()) {
                (Value::Str(s), "service.name") => Some(s.as_str()),
                _ => None,
            })
    }
}

/// The instrumentation library that created spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scope {
    /// Library name.
    pub name: String,
    /// Library version.
    pub version: String,
    /// Scope attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL of the scope.
    pub schema_url: String,
}

/// A timestamped annotation on a span.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When, unix nanoseconds.
    pub time_unix_nano: u64,
    /// Event name, e.g. `exception`.
    pub name: String,
    /// Event attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// A reference from a span to another span, possibly in another trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    /// The linked trace.
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
    /// W3C trace state of the link.
    pub trace_state: String,
    /// W3C trace flags and OTLP flag bits.
    pub flags: u32,
    /// Link attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
}

/// One span with everything OTLP says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its id.
    pub span_id: SpanId,
    /// Its parent's id; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C trace state.
    pub trace_state: String,
    /// W3C trace flags and OTLP flag bits.
    pub flags: u32,
    /// Operation name.
    pub name: String,
    /// OTLP span kind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i8,
    /// Start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// End, unix nanoseconds.
    pub end_unix_nano: u64,
    /// Span attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the producer dropped.
    pub dropped_attributes_count: u32,
    /// Events, in the order given.
    pub events: Vec<Event>,
    /// Events the producer dropped.
    pub dropped_events_count: u32,
    /// Links, in the order given.
    pub links: Vec<Link>,
    /// Links the producer dropped.
    pub dropped_links_count: u32,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i8,
    /// Status message.
    pub status_message: String,
    /// The producing resource.
    pub resource: Arc<Resource>,
    /// The instrumentation scope.
    pub scope: Arc<Scope>,
}

impl Span {
    /// Duration in nanoseconds (0 when the end precedes the start).
    pub fn duration_nano(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// Lowercase hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

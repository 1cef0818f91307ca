//! Attribute values and their types. A type's code is what the `type` field of an
//! attribute entry stores; its name is what column names and `meta.json` use.

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueType {
    /// [`Value::Str`]
    Str = 0,
    /// [`Value::Int`]
    Int = 1,
    /// [`Value::Float`]
    Float = 2,
    /// [`Value::Bool`]
    Bool = 3,
    /// [`Value::StrArray`]
    StrArray = 4,
    /// [`Value::IntArray`]
    IntArray = 5,
    /// [`Value::FloatArray`]
    FloatArray = 6,
    /// [`Value::BoolArray`]
    BoolArray = 7,
    /// [`Value::Opaque`]
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

    /// The code stored in the `type` field of attribute entries.
    pub fn code(self) -> i8 {
        self as i8
    }

    /// The type named `name` (see [`ValueType::name`]).
    pub fn from_name(name: &str) -> Option<ValueType> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Short name, used in column names, `meta.json` and `traceql blocks`.
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

/// `meta.json` writes a type by its [`ValueType::name`].
impl serde::Serialize for ValueType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ValueType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        ValueType::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown attribute type `{name}`")))
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

impl Value {
    /// The value borrowed.
    pub fn borrowed(&self) -> ValueRef<'_> {
        match self {
            Value::Str(v) => ValueRef::Str(v),
            Value::Int(v) => ValueRef::Int(*v),
            Value::Float(v) => ValueRef::Float(*v),
            Value::Bool(v) => ValueRef::Bool(*v),
            Value::StrArray(v) => ValueRef::StrArray(v.iter().map(String::as_str).collect()),
            Value::IntArray(v) => ValueRef::IntArray(v.clone()),
            Value::FloatArray(v) => ValueRef::FloatArray(v.clone()),
            Value::BoolArray(v) => ValueRef::BoolArray(v.clone()),
            Value::Opaque(v) => ValueRef::Opaque(v),
        }
    }
}

/// An attribute value borrowed from where it is read (the span model, a batch of
/// Grafana Tempo's rows), as the row builder copies it into columns. Arrays, which are
/// rare, are collected.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueRef<'a> {
    /// A string.
    Str(&'a str),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A non-empty array of strings.
    StrArray(Vec<&'a str>),
    /// A non-empty array of integers.
    IntArray(Vec<i64>),
    /// A non-empty array of floats.
    FloatArray(Vec<f64>),
    /// A non-empty array of booleans.
    BoolArray(Vec<bool>),
    /// A value TraceQL cannot query, as its OTLP/JSON `AnyValue` text.
    Opaque(&'a str),
}

impl ValueRef<'_> {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            ValueRef::Str(_) => ValueType::Str,
            ValueRef::Int(_) => ValueType::Int,
            ValueRef::Float(_) => ValueType::Float,
            ValueRef::Bool(_) => ValueType::Bool,
            ValueRef::StrArray(_) => ValueType::StrArray,
            ValueRef::IntArray(_) => ValueType::IntArray,
            ValueRef::FloatArray(_) => ValueType::FloatArray,
            ValueRef::BoolArray(_) => ValueType::BoolArray,
            ValueRef::Opaque(_) => ValueType::Opaque,
        }
    }

    /// The value, owned.
    pub fn to_value(&self) -> Value {
        match self {
            ValueRef::Str(v) => Value::Str(v.to_string()),
            ValueRef::Int(v) => Value::Int(*v),
            ValueRef::Float(v) => Value::Float(*v),
            ValueRef::Bool(v) => Value::Bool(*v),
            ValueRef::StrArray(v) => Value::StrArray(v.iter().map(|s| s.to_string()).collect()),
            ValueRef::IntArray(v) => Value::IntArray(v.clone()),
            ValueRef::FloatArray(v) => Value::FloatArray(v.clone()),
            ValueRef::BoolArray(v) => Value::BoolArray(v.clone()),
            ValueRef::Opaque(v) => Value::Opaque(v.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_serialise_by_name_and_keep_their_codes() {
        for (code, t) in ValueType::ALL.into_iter().enumerate() {
            assert_eq!(t.code() as usize, code);
            assert_eq!(ValueType::from_code(t.code()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
            assert_eq!(serde_json::from_str::<ValueType>(&json).unwrap(), t);
        }
        assert!(serde_json::from_str::<ValueType>("\"decimal\"").is_err());
    }
}

//! Attribute values and their types. A type's code is what the `type` field of an
//! attribute entry stores; its name is what column names and `meta.json` use.

/// An attribute value. Values are equal when they have the same type and the same
/// contents, floats compared by their bits (so every value equals itself and can key a
/// map). As JSON a value is its OTLP/JSON `AnyValue` (`{"intValue":"200"}`); as text,
/// what a person reads in a table cell (`200`, `GET`, `["a","b"]`).
#[derive(Clone, Debug)]
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

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        match (self, other) {
            (Value::Str(a), Value::Str(b)) | (Value::Opaque(a), Value::Opaque(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::StrArray(a), Value::StrArray(b)) => a == b,
            (Value::IntArray(a), Value::IntArray(b)) => a == b,
            (Value::FloatArray(a), Value::FloatArray(b)) => bits(a) == bits(b),
            (Value::BoolArray(a), Value::BoolArray(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl std::hash::Hash for Value {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value_type().hash(state);
        match self {
            Value::Str(v) | Value::Opaque(v) => v.hash(state),
            Value::Int(v) => v.hash(state),
            Value::Float(v) => v.to_bits().hash(state),
            Value::Bool(v) => v.hash(state),
            Value::StrArray(v) => v.hash(state),
            Value::IntArray(v) => v.hash(state),
            Value::FloatArray(v) => v.iter().for_each(|f| f.to_bits().hash(state)),
            Value::BoolArray(v) => v.hash(state),
        }
    }
}

/// One element of an `AnyValue` array, as OTLP/JSON writes it.
enum Item<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl serde::Serialize for Item<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        match *self {
            Item::Str(v) => map.serialize_entry("stringValue", v)?,
            // 64-bit integers are strings in OTLP/JSON.
            Item::Int(v) => map.serialize_entry("intValue", itoa::Buffer::new().format(v))?,
            Item::Float(v) => map.serialize_entry("doubleValue", &v)?,
            Item::Bool(v) => map.serialize_entry("boolValue", &v)?,
        }
        map.end()
    }
}

/// The elements of an array value.
fn items(value: &Value) -> Option<Vec<Item<'_>>> {
    Some(match value {
        Value::StrArray(v) => v.iter().map(|s| Item::Str(s)).collect(),
        Value::IntArray(v) => v.iter().map(|i| Item::Int(*i)).collect(),
        Value::FloatArray(v) => v.iter().map(|f| Item::Float(*f)).collect(),
        Value::BoolArray(v) => v.iter().map(|b| Item::Bool(*b)).collect(),
        _ => return None,
    })
}

/// The OTLP/JSON `AnyValue` of the value: `{"stringValue":"GET"}`, `{"intValue":"200"}`,
/// `{"arrayValue":{"values":[…]}}`; an opaque value as the text it was kept as.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let scalar = match self {
            Value::Str(v) => Item::Str(v),
            Value::Int(v) => Item::Int(*v),
            Value::Float(v) => Item::Float(*v),
            Value::Bool(v) => Item::Bool(*v),
            Value::Opaque(text) => {
                return match serde_json::from_str::<&serde_json::value::RawValue>(text) {
                    Ok(raw) => raw.serialize(serializer),
                    Err(_) => Item::Str(text).serialize(serializer),
                };
            }
            array => {
                let mut map = serializer.serialize_map(Some(1))?;
                let mut values = std::collections::BTreeMap::new();
                values.insert("values", items(array).unwrap_or_default());
                map.serialize_entry("arrayValue", &values)?;
                return map.end();
            }
        };
        scalar.serialize(serializer)
    }
}

/// The value as a table cell shows it: a string as itself, a number or boolean as
/// TraceQL writes it, an array as JSON (`["a","b"]`, `[1,2]`), an opaque value as its
/// OTLP/JSON text.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(v) | Value::Opaque(v) => f.write_str(v),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{}", serde_json::json!(v)),
            Value::Bool(v) => write!(f, "{v}"),
            Value::StrArray(v) => write!(f, "{}", serde_json::json!(v)),
            Value::IntArray(v) => write!(f, "{}", serde_json::json!(v)),
            Value::FloatArray(v) => write!(f, "{}", serde_json::json!(v)),
            Value::BoolArray(v) => write!(f, "{}", serde_json::json!(v)),
        }
    }
}

impl Value {
    /// A total order: by type (in the order of [`ValueType`]'s codes), then by
    /// contents — strings by their bytes, numbers by value (floats as
    /// [`f64::total_cmp`] orders them), arrays element by element.
    pub fn total_cmp(&self, other: &Value) -> std::cmp::Ordering {
        let floats = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| a.len().cmp(&b.len()))
        };
        match (self, other) {
            (Value::Str(a), Value::Str(b)) | (Value::Opaque(a), Value::Opaque(b)) => a.cmp(b),
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::StrArray(a), Value::StrArray(b)) => a.cmp(b),
            (Value::IntArray(a), Value::IntArray(b)) => a.cmp(b),
            (Value::FloatArray(a), Value::FloatArray(b)) => floats(a, b),
            (Value::BoolArray(a), Value::BoolArray(b)) => a.cmp(b),
            (a, b) => a.value_type().cmp(&b.value_type()),
        }
    }

    /// About how many bytes the value takes, its heap included.
    pub fn size(&self) -> usize {
        let heap = match self {
            Value::Str(v) | Value::Opaque(v) => v.len(),
            Value::StrArray(v) => v.iter().map(|s| s.len() + 24).sum(),
            Value::IntArray(v) => v.len() * 8,
            Value::FloatArray(v) => v.len() * 8,
            Value::BoolArray(v) => v.len(),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => 0,
        };
        std::mem::size_of::<Value>() + heap
    }

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

    #[test]
    fn values_are_written_as_otlp_json_and_shown_as_table_cells() {
        let cases = [
            (Value::Str("GET".into()), r#"{"stringValue":"GET"}"#, "GET"),
            (Value::Int(-200), r#"{"intValue":"-200"}"#, "-200"),
            (Value::Float(1.0), r#"{"doubleValue":1.0}"#, "1.0"),
            (Value::Bool(true), r#"{"boolValue":true}"#, "true"),
            (
                Value::StrArray(vec!["a".into(), "b\"".into()]),
                r#"{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b\""}]}}"#,
                r#"["a","b\""]"#,
            ),
            (
                Value::IntArray(vec![1, 2]),
                r#"{"arrayValue":{"values":[{"intValue":"1"},{"intValue":"2"}]}}"#,
                "[1,2]",
            ),
            (
                Value::Opaque(r#"{"bytesValue":"AA=="}"#.into()),
                r#"{"bytesValue":"AA=="}"#,
                r#"{"bytesValue":"AA=="}"#,
            ),
        ];
        for (value, json, cell) in cases {
            assert_eq!(serde_json::to_string(&value).unwrap(), json);
            assert_eq!(value.to_string(), cell);
        }
    }

    #[test]
    fn values_are_equal_by_bits_and_ordered_by_type_then_contents() {
        use std::cmp::Ordering::*;
        assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
        assert_ne!(Value::Float(0.0), Value::Float(-0.0));
        assert_ne!(Value::Int(1), Value::Float(1.0));
        let ints = |a: i64, b: i64| Value::Int(a).total_cmp(&Value::Int(b));
        assert_eq!(ints(9, 10), Less, "numbers by value, not text");
        assert_eq!(Value::Str("z".into()).total_cmp(&Value::Int(0)), Less);
        assert_eq!(
            Value::FloatArray(vec![1.0]).total_cmp(&Value::FloatArray(vec![1.0, 0.0])),
            Less
        );
    }

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

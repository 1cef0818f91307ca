//! Typed views of the span-table columns a field expression reads, downcast once per
//! batch, and the attribute-entry lists (fallback attributes, events, links) read
//! through the format's one reader.

use crate::error::PlanError;
use std::borrow::Cow;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, Float64Array, Int8Array,
    Int32Array, Int64Array, ListArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::error::{DataFusionError, Result};
use traceql_format::FormatError;
use traceql_format::arrays::{self, StrCol};
use traceql_format::entries::{Elements, EntryList, str_items};
use traceql_format::value::ValueType;

use super::value::{Arr, Val};

/// A span-table column that does not have the shape the format gives it.
pub fn format_error(e: FormatError) -> DataFusionError {
    PlanError::data(format!("span table: {e}"))
}

fn downcast<'a, T: 'static>(array: &'a dyn Array, expected: &str) -> Result<&'a T> {
    arrays::downcast(array, expected).map_err(format_error)
}

/// Normalises a column to the physical types the views below expect: dictionary
/// strings are unpacked, large strings narrowed.
pub fn normalize(array: &ArrayRef) -> Result<ArrayRef> {
    arrays::normalize(array).map_err(format_error)
}

/// One attribute-entry list column, read as TraceQL values.
#[derive(Clone, Copy)]
pub struct Entries<'a>(EntryList<'a>);

impl<'a> From<EntryList<'a>> for Entries<'a> {
    fn from(list: EntryList<'a>) -> Self {
        Entries(list)
    }
}

impl<'a> Entries<'a> {
    /// Views `array` as entry lists.
    pub fn new(array: &'a dyn Array) -> Result<Self> {
        EntryList::new(array).map(Entries).map_err(format_error)
    }

    /// The entry index range of `row`.
    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        self.0.range(row)
    }

    /// Pushes the queryable values of entries in `range` whose key is `key`.
    pub fn lookup(&self, range: std::ops::Range<usize>, key: &str, out: &mut Vec<Val<'a>>) {
        for i in range {
            if self.0.key(i) == Some(key)
                && let Some(v) = self.value(i)
            {
                out.push(v);
            }
        }
    }

    /// Whether an entry in `range` with key `key` holds a value TraceQL cannot query.
    pub fn has_unqueryable(&self, range: std::ops::Range<usize>, key: &str) -> bool {
        range.into_iter().any(|i| {
            self.0.key(i) == Some(key)
                && self.0.values.value_type(i).ok() == Some(ValueType::Opaque)
        })
    }

    /// The value of entry `i`; `None` for opaque values, which TraceQL cannot query.
    pub fn value(&self, i: usize) -> Option<Val<'a>> {
        let e = &self.0.values;
        Some(match e.value_type(i).ok()? {
            ValueType::Str => Val::Str(Cow::Borrowed(e.str(i)?)),
            ValueType::Int => Val::Int(e.int(i)),
            ValueType::Float => Val::Float(e.float(i)),
            ValueType::Bool => Val::Bool(e.bool(i)),
            ValueType::StrArray => Val::Arr(Arr::Str(e.strs(i))),
            ValueType::IntArray => Val::Arr(Arr::Int(e.ints(i).to_vec())),
            ValueType::FloatArray => Val::Arr(Arr::Float(e.floats(i).to_vec())),
            ValueType::BoolArray => Val::Arr(Arr::Bool(e.bools(i))),
            ValueType::Opaque => return None,
        })
    }

    /// Every key of the entries in `range`, with its value.
    pub fn entries(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (&'a str, Option<Val<'a>>)> + '_ {
        range.filter_map(|i| Some((self.0.key(i)?, self.value(i))))
    }
}

/// A typed list column of a typed array attribute, as the value of a row.
pub fn typed_array<'a>(list: &'a ListArray, row: usize) -> Option<Val<'a>> {
    if list.is_null(row) {
        return None;
    }
    let values = list.value(row);
    Some(Val::Arr(match values.data_type() {
        DataType::Utf8 | DataType::Utf8View => Arr::Str(str_items(list, row).ok()?),
        DataType::Int64 => Arr::Int(values.as_primitive::<Int64Type>().values().to_vec()),
        DataType::Float64 => Arr::Float(values.as_primitive::<Float64Type>().values().to_vec()),
        DataType::Boolean => Arr::Bool(values.as_boolean().iter().flatten().collect()),
        _ => return None,
    }))
}

/// One input column of a field expression, viewed by what it holds.
#[derive(Clone, Copy)]
pub enum Col<'a> {
    /// Strings.
    Str(StrCol<'a>),
    /// Int8 codes (kind, status).
    I8(&'a Int8Array),
    /// Int32 (nested-set numbers).
    I32(&'a Int32Array),
    /// Int64.
    I64(&'a Int64Array),
    /// UInt64 (times, durations).
    U64(&'a UInt64Array),
    /// Float64.
    F64(&'a Float64Array),
    /// Booleans.
    Bool(&'a BooleanArray),
    /// Ids.
    Id(&'a FixedSizeBinaryArray),
    /// A typed array attribute.
    List(&'a ListArray),
    /// Fallback attribute entries.
    Entries(Entries<'a>),
    /// Events or links.
    Elements(Elements<'a>),
}

/// How an input column is to be viewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ColKind {
    /// See [`Col::Str`].
    Str,
    /// See [`Col::I8`].
    I8,
    /// See [`Col::I32`].
    I32,
    /// See [`Col::I64`].
    I64,
    /// See [`Col::U64`].
    U64,
    /// See [`Col::F64`].
    F64,
    /// See [`Col::Bool`].
    Bool,
    /// See [`Col::Id`].
    Id,
    /// See [`Col::List`].
    List,
    /// See [`Col::Entries`].
    Entries,
    /// See [`Col::Elements`].
    Elements,
}

impl<'a> Col<'a> {
    /// Views `array` as `kind`.
    pub fn new(kind: ColKind, array: &'a dyn Array) -> Result<Self> {
        Ok(match kind {
            ColKind::Str => Col::Str(StrCol::new(array, "string column").map_err(format_error)?),
            ColKind::I8 => Col::I8(downcast(array, "int8 column")?),
            ColKind::I32 => Col::I32(downcast(array, "int32 column")?),
            ColKind::I64 => Col::I64(downcast(array, "int64 column")?),
            ColKind::U64 => Col::U64(downcast(array, "uint64 column")?),
            ColKind::F64 => Col::F64(downcast(array, "float64 column")?),
            ColKind::Bool => Col::Bool(downcast(array, "boolean column")?),
            ColKind::Id => Col::Id(downcast(array, "id column")?),
            ColKind::List => Col::List(downcast(array, "list column")?),
            ColKind::Entries => Col::Entries(Entries::new(array)?),
            ColKind::Elements => Col::Elements(Elements::new(array).map_err(format_error)?),
        })
    }
}

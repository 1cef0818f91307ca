//! Typed views of the span-table columns a field expression reads, downcast once per
//! batch, and the attribute-entry lists (fallback attributes, events, links).

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, Float64Array, Int8Array,
    Int32Array, Int64Array, ListArray, StringArray, StringViewArray, StructArray, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::error::{DataFusionError, Result};

use super::value::{Arr, Val};

/// A string column, plain or view.
#[derive(Clone, Copy)]
pub enum StrCol<'a> {
    /// `Utf8`.
    Plain(&'a StringArray),
    /// `Utf8View`.
    View(&'a StringViewArray),
}

impl<'a> StrCol<'a> {
    /// The value at `row`, `None` if null.
    pub fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            StrCol::Plain(a) => a.is_valid(row).then(|| a.value(row)),
            StrCol::View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }

    fn new(array: &'a dyn Array) -> Result<Self> {
        if let Some(a) = array.as_any().downcast_ref::<StringArray>() {
            Ok(StrCol::Plain(a))
        } else if let Some(a) = array.as_any().downcast_ref::<StringViewArray>() {
            Ok(StrCol::View(a))
        } else {
            Err(type_error("string", array.data_type()))
        }
    }
}

fn type_error(expected: &str, found: &DataType) -> DataFusionError {
    DataFusionError::Internal(format!(
        "span table column has type {found}, expected {expected}"
    ))
}

fn downcast<'a, T: 'static>(array: &'a dyn Array, expected: &str) -> Result<&'a T> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| type_error(expected, array.data_type()))
}

/// Normalises a column to the physical types the views below expect: dictionary
/// strings are unpacked, large strings narrowed.
pub fn normalize(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(match array.data_type() {
        DataType::Dictionary(_, value)
            if matches!(
                **value,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            ) =>
        {
            cast(array, &DataType::Utf8)?
        }
        DataType::LargeUtf8 => cast(array, &DataType::Utf8)?,
        _ => Arc::clone(array),
    })
}

/// One attribute-entry list column (`List<Struct<key, type, str, int, …>>`).
#[derive(Clone, Copy)]
pub struct Entries<'a> {
    list: &'a ListArray,
    key: StrCol<'a>,
    value_type: &'a Int8Array,
    str: StrCol<'a>,
    int: &'a Int64Array,
    float: &'a Float64Array,
    bool: &'a BooleanArray,
    strs: &'a ListArray,
    ints: &'a ListArray,
    floats: &'a ListArray,
    bools: &'a ListArray,
}

impl<'a> Entries<'a> {
    /// Views `array` as entry lists.
    pub fn new(array: &'a dyn Array) -> Result<Self> {
        let list = downcast::<ListArray>(array, "attribute list")?;
        Self::from_list(list)
    }

    fn from_list(list: &'a ListArray) -> Result<Self> {
        let entries = downcast::<StructArray>(list.values().as_ref(), "attribute entries")?;
        let field = |name: &str| -> Result<&'a ArrayRef> {
            entries.column_by_name(name).ok_or_else(|| {
                DataFusionError::Internal(format!("attribute entry without `{name}`"))
            })
        };
        Ok(Entries {
            list,
            key: StrCol::new(field("key")?.as_ref())?,
            value_type: downcast(field("type")?.as_ref(), "int8")?,
            str: StrCol::new(field("str")?.as_ref())?,
            int: downcast(field("int")?.as_ref(), "int64")?,
            float: downcast(field("float")?.as_ref(), "float64")?,
            bool: downcast(field("bool")?.as_ref(), "boolean")?,
            strs: downcast(field("strs")?.as_ref(), "list")?,
            ints: downcast(field("ints")?.as_ref(), "list")?,
            floats: downcast(field("floats")?.as_ref(), "list")?,
            bools: downcast(field("bools")?.as_ref(), "list")?,
        })
    }

    /// The entry index range of `row`.
    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        if self.list.is_null(row) {
            return 0..0;
        }
        let offsets = self.list.value_offsets();
        offsets[row] as usize..offsets[row + 1] as usize
    }

    /// Pushes the queryable values of entries in `range` whose key is `key`.
    pub fn lookup(&self, range: std::ops::Range<usize>, key: &str, out: &mut Vec<Val<'a>>) {
        for i in range {
            if self.key.get(i) == Some(key)
                && let Some(v) = self.value(i)
            {
                out.push(v);
            }
        }
    }

    /// The value of entry `i`; `None` for opaque values, which TraceQL cannot query.
    pub fn value(&self, i: usize) -> Option<Val<'a>> {
        Some(match self.value_type.value(i) {
            0 => Val::Str(Cow::Borrowed(self.str.get(i)?)),
            1 => Val::Int(self.int.value(i)),
            2 => Val::Float(self.float.value(i)),
            3 => Val::Bool(self.bool.value(i)),
            4 => Val::Arr(Arr::Str(str_items(self.strs, i)?)),
            5 => Val::Arr(Arr::Int(
                self.ints
                    .value(i)
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec(),
            )),
            6 => Val::Arr(Arr::Float(
                self.floats
                    .value(i)
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec(),
            )),
            7 => Val::Arr(Arr::Bool(
                self.bools.value(i).as_boolean().iter().flatten().collect(),
            )),
            _ => return None,
        })
    }

    /// Every key of the entries in `range`, with its value.
    pub fn entries(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (&'a str, Option<Val<'a>>)> + '_ {
        range.filter_map(|i| Some((self.key.get(i)?, self.value(i))))
    }
}

fn str_items(list: &ListArray, i: usize) -> Option<Vec<&str>> {
    let offsets = list.value_offsets();
    let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
    let values = StrCol::new(list.values().as_ref()).ok()?;
    Some((start..end).filter_map(|j| values.get(j)).collect())
}

/// A typed list column of a typed array attribute, as the value of a row.
pub fn typed_array<'a>(list: &'a ListArray, row: usize) -> Option<Val<'a>> {
    if list.is_null(row) {
        return None;
    }
    let values = list.value(row);
    Some(Val::Arr(match values.data_type() {
        DataType::Utf8 | DataType::Utf8View => Arr::Str(str_items(list, row)?),
        DataType::Int64 => Arr::Int(values.as_primitive::<Int64Type>().values().to_vec()),
        DataType::Float64 => Arr::Float(values.as_primitive::<Float64Type>().values().to_vec()),
        DataType::Boolean => Arr::Bool(values.as_boolean().iter().flatten().collect()),
        _ => return None,
    }))
}

/// Span events: per row a list of `{time_unix_nano, name, attributes}`.
#[derive(Clone, Copy)]
pub struct Elements<'a> {
    list: &'a ListArray,
    struct_array: &'a StructArray,
    /// Entry lists of the elements' attributes.
    pub attributes: Entries<'a>,
}

impl<'a> Elements<'a> {
    /// Views an `events` or `links` column.
    pub fn new(array: &'a dyn Array) -> Result<Self> {
        let list = downcast::<ListArray>(array, "list")?;
        let struct_array = downcast::<StructArray>(list.values().as_ref(), "struct")?;
        let attributes = struct_array
            .column_by_name("attributes")
            .ok_or_else(|| DataFusionError::Internal("element without attributes".into()))?;
        Ok(Elements {
            list,
            struct_array,
            attributes: Entries::from_list(downcast(attributes.as_ref(), "attribute list")?)?,
        })
    }

    /// The element index range of `row`.
    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        if self.list.is_null(row) {
            return 0..0;
        }
        let offsets = self.list.value_offsets();
        offsets[row] as usize..offsets[row + 1] as usize
    }

    /// A field of the element struct.
    pub fn field(&self, name: &str) -> Result<&'a ArrayRef> {
        self.struct_array
            .column_by_name(name)
            .ok_or_else(|| DataFusionError::Internal(format!("element without `{name}`")))
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
            ColKind::Str => Col::Str(StrCol::new(array)?),
            ColKind::I8 => Col::I8(downcast(array, "int8")?),
            ColKind::I32 => Col::I32(downcast(array, "int32")?),
            ColKind::I64 => Col::I64(downcast(array, "int64")?),
            ColKind::U64 => Col::U64(downcast(array, "uint64")?),
            ColKind::F64 => Col::F64(downcast(array, "float64")?),
            ColKind::Bool => Col::Bool(downcast(array, "boolean")?),
            ColKind::Id => Col::Id(downcast(array, "fixed-size binary")?),
            ColKind::List => Col::List(downcast(array, "list")?),
            ColKind::Entries => Col::Entries(Entries::new(array)?),
            ColKind::Elements => Col::Elements(Elements::new(array)?),
        })
    }
}

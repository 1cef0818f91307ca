//! Typed access to the Arrow arrays of a block or span table: one downcast helper for
//! columns, struct fields and list items, and a view of string columns that accepts
//! both plain and view strings (DataFusion may hand out either).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ListArray, RecordBatch, StringArray, StringViewArray, StructArray,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use crate::error::{FormatError, Result};

/// `array` as a `T`, or a [`FormatError::Corrupt`] naming `what` and the type found.
pub fn downcast<'a, T: 'static>(array: &'a dyn Array, what: &str) -> Result<&'a T> {
    named(array, || what.to_string())
}

/// `array` as a `T`; `what` is only built for the error.
fn named<T: 'static>(array: &dyn Array, what: impl FnOnce() -> String) -> Result<&T> {
    array.as_any().downcast_ref::<T>().ok_or_else(|| {
        FormatError::corrupt(format!(
            "{} has unexpected type {}",
            what(),
            array.data_type()
        ))
    })
}

/// Column `name` of `batch` as a `T`.
pub fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| FormatError::corrupt(format!("column `{name}` is missing")))?;
    named(array.as_ref(), || format!("column `{name}`"))
}

/// Field `name` of a struct array (an event, a link, an attribute entry) as a `T`.
pub fn field<'a, T: 'static>(s: &'a StructArray, name: &str) -> Result<&'a T> {
    let array = s
        .column_by_name(name)
        .ok_or_else(|| FormatError::corrupt(format!("field `{name}` is missing")))?;
    named(array.as_ref(), || format!("field `{name}`"))
}

/// String field `name` of a struct array (plain or view strings).
pub fn str_field<'a>(s: &'a StructArray, name: &str) -> Result<StrCol<'a>> {
    let array = s
        .column_by_name(name)
        .ok_or_else(|| FormatError::corrupt(format!("field `{name}` is missing")))?;
    StrCol::new(array.as_ref(), &format!("field `{name}`"))
}

/// A list column and its items, seen as `T` once rather than at every read.
#[derive(Debug)]
pub struct TypedList<'a, T> {
    list: &'a ListArray,
    /// The items of all lists.
    pub items: &'a T,
}

impl<T> Clone for TypedList<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TypedList<'_, T> {}

impl<'a, T: 'static> TypedList<'a, T> {
    /// Views `list`, whose items must be `T`; `what` names it in errors.
    pub fn new(list: &'a ListArray, what: &str) -> Result<Self> {
        let items = named(list.values().as_ref(), || format!("items of {what}"))?;
        Ok(TypedList { list, items })
    }

    /// The index range in [`Self::items`] of list `row`; empty for a null list.
    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        list_range(self.list, row)
    }
}

/// The index range of the items of list `row`; empty for a null list.
pub fn list_range(list: &ListArray, row: usize) -> std::ops::Range<usize> {
    if list.is_null(row) {
        return 0..0;
    }
    let offsets = list.value_offsets();
    offsets[row] as usize..offsets[row + 1] as usize
}

/// The items of list `row` of a list column, converted by `get`.
pub fn list_values<A: 'static, T>(
    list: &ListArray,
    row: usize,
    get: impl Fn(&A, usize) -> T,
) -> Result<Vec<T>> {
    let values = downcast::<A>(list.values().as_ref(), "list items")?;
    Ok(list_range(list, row).map(|j| get(values, j)).collect())
}

/// A string column, plain or view.
#[derive(Clone, Copy, Debug)]
pub enum StrCol<'a> {
    /// `Utf8`.
    Plain(&'a StringArray),
    /// `Utf8View`.
    View(&'a StringViewArray),
}

impl<'a> StrCol<'a> {
    /// Views `array`, which must hold plain or view strings; `what` names it in errors.
    pub fn new(array: &'a dyn Array, what: &str) -> Result<Self> {
        if let Some(a) = array.as_any().downcast_ref::<StringArray>() {
            Ok(StrCol::Plain(a))
        } else if let Some(a) = array.as_any().downcast_ref::<StringViewArray>() {
            Ok(StrCol::View(a))
        } else {
            Err(FormatError::corrupt(format!(
                "{what} has type {}, expected strings",
                array.data_type()
            )))
        }
    }

    /// The value at `row`, `None` if null.
    pub fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            StrCol::Plain(a) => a.is_valid(row).then(|| a.value(row)),
            StrCol::View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }

    /// The value at `row`, the empty string if null.
    pub fn value(&self, row: usize) -> &'a str {
        self.get(row).unwrap_or_default()
    }
}

/// Normalises a column to the physical types the views of this crate expect:
/// dictionary strings are unpacked, large strings narrowed.
pub fn normalize(array: &ArrayRef) -> Result<ArrayRef> {
    let to_utf8 = |a: &ArrayRef| {
        cast(a, &DataType::Utf8).map_err(|e| FormatError::corrupt(format!("string column: {e}")))
    };
    Ok(match array.data_type() {
        DataType::Dictionary(_, value)
            if matches!(
                **value,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            ) =>
        {
            to_utf8(array)?
        }
        DataType::LargeUtf8 => to_utf8(array)?,
        _ => Arc::clone(array),
    })
}

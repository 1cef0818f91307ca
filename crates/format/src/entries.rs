//! Attribute entry lists, stored as `List<Struct<key, type, str, int, float, bool,
//! strs, ints, floats, bools>>` (see [`crate::schema::attribute_entry_fields`]): the
//! fallback for attributes without a typed column, and the attributes of events, links
//! and scopes. [`EntryListBuilder`] writes them; [`EntryList`] is the one reader, and
//! [`Elements`] views the events and links that carry them. An entry's value is a
//! struct of [`crate::schema::value_fields`], which is also how results hold attribute
//! values: [`ValueBuilder`] writes such a column, [`Values`] reads one.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Float64Builder, Int8Array,
    Int8Builder, Int64Array, Int64Builder, ListArray, ListBuilder, StringBuilder, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::DataType;

use crate::arrays::{StrCol, TypedList, downcast, field, list_range, str_field};
use crate::error::{FormatError, Result};
use crate::schema::{attribute_entry_fields as entry_fields, entry_list_type, value_fields};
use crate::value::{KeyValue, Value, ValueRef, ValueType};

/// Accumulates values into a struct column of [`value_fields`]: one row per value, null
/// for nil.
#[derive(Default)]
pub struct ValueBuilder {
    value_type: Int8Builder,
    str: StringBuilder,
    int: Int64Builder,
    float: Float64Builder,
    bool: BooleanBuilder,
    strs: ListBuilder<StringBuilder>,
    ints: ListBuilder<Int64Builder>,
    floats: ListBuilder<Float64Builder>,
    bools: ListBuilder<BooleanBuilder>,
    /// Per row, whether it holds a value.
    valid: Vec<bool>,
}

impl ValueBuilder {
    /// Appends a value, or null for `None`.
    pub fn append(&mut self, value: Option<&ValueRef<'_>>) {
        self.valid.push(value.is_some());
        let Some(value) = value else {
            // Fields the struct's validity hides; `type` is not nullable.
            self.value_type.append_value(ValueType::Str.code());
            self.str.append_null();
            self.int.append_null();
            self.float.append_null();
            self.bool.append_null();
            self.strs.append(false);
            self.ints.append(false);
            self.floats.append(false);
            self.bools.append(false);
            return;
        };
        self.value_type.append_value(value.value_type().code());
        let (mut s, mut i, mut f, mut b) = (None, None, None, None);
        let (mut ss, mut is, mut fs, mut bs) = (None, None, None, None);
        match value {
            ValueRef::Str(v) | ValueRef::Opaque(v) => s = Some(*v),
            ValueRef::Int(v) => i = Some(*v),
            ValueRef::Float(v) => f = Some(*v),
            ValueRef::Bool(v) => b = Some(*v),
            ValueRef::StrArray(v) => ss = Some(v),
            ValueRef::IntArray(v) => is = Some(v),
            ValueRef::FloatArray(v) => fs = Some(v),
            ValueRef::BoolArray(v) => bs = Some(v),
        }
        self.str.append_option(s);
        self.int.append_option(i);
        self.float.append_option(f);
        self.bool.append_option(b);
        append_list(
            &mut self.strs,
            ss.map(|v| v.iter().map(|x| Some(*x))),
            |b, v| b.append_option(v),
        );
        append_list(
            &mut self.ints,
            is.map(|v| v.iter().map(|x| Some(*x))),
            |b, v| b.append_option(v),
        );
        append_list(
            &mut self.floats,
            fs.map(|v| v.iter().map(|x| Some(*x))),
            |b, v| b.append_option(v),
        );
        append_list(
            &mut self.bools,
            bs.map(|v| v.iter().map(|x| Some(*x))),
            |b, v| b.append_option(v),
        );
    }

    /// The columns of the [`value_fields`] so far, and the rows' validity (`None` if
    /// every row holds a value); the builder starts over.
    fn finish_parts(&mut self) -> (Vec<ArrayRef>, Option<NullBuffer>) {
        let valid = std::mem::take(&mut self.valid);
        let nulls = valid.contains(&false).then(|| NullBuffer::from(valid));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.value_type.finish()),
            Arc::new(self.str.finish()),
            Arc::new(self.int.finish()),
            Arc::new(self.float.finish()),
            Arc::new(self.bool.finish()),
            Arc::new(self.strs.finish()),
            Arc::new(self.ints.finish()),
            Arc::new(self.floats.finish()),
            Arc::new(self.bools.finish()),
        ];
        (columns, nulls)
    }

    /// The finished column, of [`crate::schema::value_column_type`]; the builder starts
    /// over.
    pub fn finish(&mut self) -> StructArray {
        let (columns, nulls) = self.finish_parts();
        StructArray::new(value_fields(), columns, nulls)
    }
}

/// Accumulates attribute lists, one list per row.
#[derive(Default)]
pub struct EntryListBuilder {
    offsets: Vec<i32>,
    key: StringBuilder,
    values: ValueBuilder,
    len: i32,
}

impl EntryListBuilder {
    /// Appends one row's list.
    pub fn append<'a>(&mut self, entries: impl IntoIterator<Item = &'a KeyValue>) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for kv in entries {
            self.push(&kv.key, &kv.value.borrowed());
        }
        self.offsets.push(self.len);
    }

    /// Appends one row's list of borrowed entries.
    pub fn append_refs<'e, 'a: 'e>(
        &mut self,
        entries: impl IntoIterator<Item = &'e (&'a str, ValueRef<'a>)>,
    ) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for (key, value) in entries {
            self.push(key, value);
        }
        self.offsets.push(self.len);
    }

    fn push(&mut self, key: &str, value: &ValueRef<'_>) {
        self.len += 1;
        self.key.append_value(key);
        self.values.append(Some(value));
    }

    /// The finished column.
    pub fn finish(&mut self) -> ArrayRef {
        let offsets = std::mem::take(&mut self.offsets);
        let offsets = if offsets.is_empty() { vec![0] } else { offsets };
        self.len = 0;
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.key.finish())];
        columns.extend(self.values.finish_parts().0);
        let entries = StructArray::new(entry_fields(), columns, None);
        let DataType::List(item) = entry_list_type() else {
            unreachable!()
        };
        Arc::new(ListArray::new(
            item,
            OffsetBuffer::new(offsets.into()),
            Arc::new(entries),
            None,
        ))
    }
}

fn append_list<B, T, I>(
    builder: &mut ListBuilder<B>,
    values: Option<I>,
    mut push: impl FnMut(&mut B, Option<T>),
) where
    B: arrow::array::ArrayBuilder,
    I: Iterator<Item = Option<T>>,
{
    match values {
        Some(values) => {
            for v in values {
                push(builder.values(), v);
            }
            builder.append(true);
        }
        None => builder.append(false),
    }
}

/// A view of a struct column of [`value_fields`] (a column of values, or the values of
/// attribute entries), for reading values in place. Every field is checked and
/// downcast once, when the view is made.
#[derive(Clone, Copy, Debug)]
pub struct Values<'a> {
    values: &'a StructArray,
    value_type: &'a Int8Array,
    str: StrCol<'a>,
    int: &'a Int64Array,
    float: &'a Float64Array,
    bool: &'a BooleanArray,
    strs: (&'a ListArray, StrCol<'a>),
    ints: TypedList<'a, Int64Array>,
    floats: TypedList<'a, Float64Array>,
    bools: TypedList<'a, BooleanArray>,
}

impl<'a> Values<'a> {
    /// Views a column of values (of [`crate::schema::value_column_type`]).
    pub fn new(column: &'a dyn Array) -> Result<Self> {
        Self::from_struct(downcast::<StructArray>(column, "value column")?)
    }

    /// Views the value fields of `s` (other fields, such as an entry's key, are left).
    pub fn from_struct(s: &'a StructArray) -> Result<Self> {
        let strs = field::<ListArray>(s, "strs")?;
        Ok(Values {
            values: s,
            value_type: field(s, "type")?,
            str: str_field(s, "str")?,
            int: field(s, "int")?,
            float: field(s, "float")?,
            bool: field(s, "bool")?,
            strs: (
                strs,
                StrCol::new(strs.values().as_ref(), "items of `strs`")?,
            ),
            ints: TypedList::new(field(s, "ints")?, "`ints`")?,
            floats: TypedList::new(field(s, "floats")?, "`floats`")?,
            bools: TypedList::new(field(s, "bools")?, "`bools`")?,
        })
    }

    /// Whether row `i` is nil.
    pub fn is_null(&self, i: usize) -> bool {
        self.values.is_null(i)
    }

    /// The value type of row `i`, or an error for a code this format does not define.
    pub fn value_type(&self, i: usize) -> Result<ValueType> {
        let code = self.value_type.value(i);
        ValueType::from_code(code)
            .ok_or_else(|| FormatError::corrupt(format!("unknown attribute type code {code}")))
    }

    /// The string of row `i` (of a string or opaque value).
    pub fn str(&self, i: usize) -> Option<&'a str> {
        self.str.get(i)
    }

    /// The integer of row `i`.
    pub fn int(&self, i: usize) -> i64 {
        self.int.value(i)
    }

    /// The float of row `i`.
    pub fn float(&self, i: usize) -> f64 {
        self.float.value(i)
    }

    /// The boolean of row `i`.
    pub fn bool(&self, i: usize) -> bool {
        self.bool.value(i)
    }

    /// The strings of row `i` (of a string array).
    pub fn strs(&self, i: usize) -> Vec<&'a str> {
        let (list, items) = self.strs;
        list_range(list, i).filter_map(|j| items.get(j)).collect()
    }

    /// The integers of row `i` (of an int array).
    pub fn ints(&self, i: usize) -> &'a [i64] {
        &self.ints.items.values()[self.ints.range(i)]
    }

    /// The floats of row `i` (of a float array).
    pub fn floats(&self, i: usize) -> &'a [f64] {
        &self.floats.items.values()[self.floats.range(i)]
    }

    /// The booleans of row `i` (of a bool array).
    pub fn bools(&self, i: usize) -> Vec<bool> {
        let items = self.bools.items;
        self.bools.range(i).map(|j| items.value(j)).collect()
    }

    /// The value of row `i`, owned; `None` for nil.
    pub fn get(&self, i: usize) -> Result<Option<Value>> {
        if self.is_null(i) {
            return Ok(None);
        }
        self.value(i).map(Some)
    }

    /// The value of row `i`, owned, read as present.
    pub fn value(&self, i: usize) -> Result<Value> {
        Ok(match self.value_type(i)? {
            ValueType::Str => Value::Str(self.str.value(i).to_string()),
            ValueType::Opaque => Value::Opaque(self.str.value(i).to_string()),
            ValueType::Int => Value::Int(self.int(i)),
            ValueType::Float => Value::Float(self.float(i)),
            ValueType::Bool => Value::Bool(self.bool(i)),
            ValueType::StrArray => {
                Value::StrArray(self.strs(i).into_iter().map(str::to_string).collect())
            }
            ValueType::IntArray => Value::IntArray(self.ints(i).to_vec()),
            ValueType::FloatArray => Value::FloatArray(self.floats(i).to_vec()),
            ValueType::BoolArray => Value::BoolArray(self.bools(i)),
        })
    }
}

/// A view of one attribute entry list column, for reading entries in place: their keys,
/// and their [`Values`].
#[derive(Clone, Copy, Debug)]
pub struct EntryList<'a> {
    list: &'a ListArray,
    key: StrCol<'a>,
    /// The entries' values.
    pub values: Values<'a>,
}

impl<'a> EntryList<'a> {
    /// Views an attribute list column.
    pub fn new(column: &'a dyn Array) -> Result<Self> {
        Self::from_list(downcast::<ListArray>(column, "attribute list")?)
    }

    /// Views an attribute list column already seen as a list.
    pub fn from_list(list: &'a ListArray) -> Result<Self> {
        let s = downcast::<StructArray>(list.values().as_ref(), "attribute entries")?;
        Ok(EntryList {
            list,
            key: str_field(s, "key")?,
            values: Values::from_struct(s)?,
        })
    }

    /// The entry index range of `row`.
    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        list_range(self.list, row)
    }

    /// The key of entry `i`.
    pub fn key(&self, i: usize) -> Option<&'a str> {
        self.key.get(i)
    }

    /// The attributes of row `row`, appended to `out`.
    pub fn read(&self, row: usize, out: &mut Vec<KeyValue>) -> Result<()> {
        for i in self.range(row) {
            out.push(KeyValue {
                key: self.key.value(i).to_string(),
                value: self.values.value(i)?,
            });
        }
        Ok(())
    }
}

/// The strings of list `row` of a string list column (plain or view strings).
pub fn str_items(list: &ListArray, row: usize) -> Result<Vec<&str>> {
    let values = StrCol::new(list.values().as_ref(), "string list items")?;
    Ok(list_range(list, row)
        .filter_map(|j| values.get(j))
        .collect())
}

/// A view of an `events` or `links` column: per row a list of structs, each with its
/// own attribute entry list.
#[derive(Clone, Copy, Debug)]
pub struct Elements<'a> {
    list: &'a ListArray,
    items: &'a StructArray,
    /// Entry lists of the elements' attributes.
    pub attributes: EntryList<'a>,
}

impl<'a> Elements<'a> {
    /// Views an `events` or `links` column.
    pub fn new(array: &'a dyn Array) -> Result<Self> {
        let list = downcast::<ListArray>(array, "events or links")?;
        let items = downcast::<StructArray>(list.values().as_ref(), "events or links")?;
        Ok(Elements {
            list,
            items,
            attributes: EntryList::from_list(field(items, "attributes")?)?,
        })
    }

    /// The element index range of `row`.
    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        list_range(self.list, row)
    }

    /// A field of the element struct, as a `T`.
    pub fn field<T: 'static>(&self, name: &str) -> Result<&'a T> {
        field(self.items, name)
    }

    /// A field of the element struct, as it is.
    pub fn column(&self, name: &str) -> Result<&'a ArrayRef> {
        self.items
            .column_by_name(name)
            .ok_or_else(|| FormatError::corrupt(format!("field `{name}` is missing")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    #[test]
    fn every_value_type_reads_back_as_written() {
        let kv = |key: &str, value| KeyValue {
            key: key.into(),
            value,
        };
        let rows = vec![
            vec![
                kv("s", Value::Str("a".into())),
                kv("i", Value::Int(-3)),
                kv("f", Value::Float(1.5)),
                kv("b", Value::Bool(true)),
            ],
            vec![],
            vec![
                kv("ss", Value::StrArray(vec!["x".into(), "y".into()])),
                kv("is", Value::IntArray(vec![1, 2])),
                kv("fs", Value::FloatArray(vec![0.5])),
                kv("bs", Value::BoolArray(vec![false, true])),
                kv("o", Value::Opaque("{\"bytesValue\":\"AA==\"}".into())),
                kv("s", Value::Str("again".into())),
            ],
        ];
        let mut builder = EntryListBuilder::default();
        for row in &rows {
            builder.append(row);
        }
        let column = builder.finish();
        let list = EntryList::new(column.as_ref()).unwrap();
        for (row, expected) in rows.iter().enumerate() {
            let mut out = Vec::new();
            list.read(row, &mut out).unwrap();
            assert_eq!(&out, expected);
        }
        assert_eq!(list.values.value_type(0).unwrap(), ValueType::Str);
        assert_eq!(list.values.ints(list.range(2).start + 1), &[1, 2]);
    }

    #[test]
    fn a_value_column_reads_back_as_written_with_nil_rows() {
        let rows = [
            Some(Value::Str("GET".into())),
            None,
            Some(Value::IntArray(vec![1, 2])),
            Some(Value::Float(0.5)),
            None,
        ];
        let mut builder = ValueBuilder::default();
        for row in &rows {
            builder.append(row.as_ref().map(Value::borrowed).as_ref());
        }
        let column = builder.finish();
        assert_eq!(column.data_type(), &crate::schema::value_column_type());
        assert_eq!(column.null_count(), 2);
        let values = Values::new(&column).unwrap();
        for (i, expected) in rows.iter().enumerate() {
            assert_eq!(&values.get(i).unwrap(), expected);
        }
    }

    #[test]
    fn an_unknown_type_code_is_corrupt() {
        let mut builder = EntryListBuilder::default();
        builder.append(&[KeyValue {
            key: "k".into(),
            value: Value::Int(1),
        }]);
        let column = builder.finish();
        let list = column.as_list::<i32>();
        let entries = list.values().as_struct();
        let mut columns = entries.columns().to_vec();
        columns[1] = Arc::new(Int8Array::from(vec![42]));
        let broken = ListArray::new(
            Arc::new(arrow::datatypes::Field::new(
                "item",
                DataType::Struct(entry_fields()),
                false,
            )),
            list.offsets().clone(),
            Arc::new(StructArray::new(entry_fields(), columns, None)),
            None,
        );
        let err = EntryList::from_list(&broken)
            .unwrap()
            .values
            .value(0)
            .unwrap_err();
        assert_eq!(err, FormatError::corrupt("unknown attribute type code 42"));
    }

    #[test]
    fn list_items_of_the_wrong_type_are_corrupt_when_viewed_not_a_panic_when_read() {
        let mut builder = EntryListBuilder::default();
        builder.append(&[KeyValue {
            key: "k".into(),
            value: Value::IntArray(vec![1]),
        }]);
        let column = builder.finish();
        let list = column.as_list::<i32>();
        let entries = list.values().as_struct();
        let mut columns = entries.columns().to_vec();
        // `ints` holding strings.
        let mut strings = arrow::array::ListBuilder::new(StringBuilder::new());
        strings.values().append_value("1");
        strings.append(true);
        columns[7] = Arc::new(strings.finish());
        let fields: Vec<_> = entry_fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i == 7 {
                    Arc::new(arrow::datatypes::Field::new(
                        "ints",
                        columns[7].data_type().clone(),
                        true,
                    ))
                } else {
                    Arc::clone(f)
                }
            })
            .collect();
        let broken_entries = StructArray::new(fields.clone().into(), columns, None);
        let broken = ListArray::new(
            Arc::new(arrow::datatypes::Field::new(
                "item",
                DataType::Struct(fields.into()),
                false,
            )),
            list.offsets().clone(),
            Arc::new(broken_entries),
            None,
        );
        let err = EntryList::from_list(&broken).unwrap_err();
        assert!(
            matches!(&err, FormatError::Corrupt(m) if m.contains("items of `ints`")),
            "{err}"
        );
    }
}

//! Attribute lists stored as `List<Struct<key, type, str, int, float, bool, strs, ints,
//! floats, bools>>`: the fallback for attributes without a typed column, and the
//! attributes of events, links and scopes.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Float64Builder, Int8Array,
    Int8Builder, Int64Array, Int64Builder, ListArray, ListBuilder, StringArray, StringBuilder,
    StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field};
use traceql_planner::schema::attribute_entry_fields as entry_fields;

use crate::model::{KeyValue, Value, ValueType};

/// The type of an attribute list column.
pub fn entry_list_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(entry_fields()),
        false,
    )))
}

/// Accumulates attribute lists, one list per row.
#[derive(Default)]
pub struct EntryListBuilder {
    offsets: Vec<i32>,
    key: StringBuilder,
    value_type: Int8Builder,
    str: StringBuilder,
    int: Int64Builder,
    float: Float64Builder,
    bool: BooleanBuilder,
    strs: ListBuilder<StringBuilder>,
    ints: ListBuilder<Int64Builder>,
    floats: ListBuilder<Float64Builder>,
    bools: ListBuilder<BooleanBuilder>,
    len: i32,
}

impl EntryListBuilder {
    /// Appends one row's list.
    pub fn append<'a>(&mut self, entries: impl IntoIterator<Item = &'a KeyValue>) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for kv in entries {
            self.push(kv);
        }
        self.offsets.push(self.len);
    }

    fn push(&mut self, kv: &KeyValue) {
        self.len += 1;
        self.key.append_value(&kv.key);
        self.value_type.append_value(kv.value.value_type() as i8);
        let (mut s, mut i, mut f, mut b) = (None, None, None, None);
        let (mut ss, mut is, mut fs, mut bs) = (None, None, None, None);
        match &kv.value {
            Value::Str(v) | Value::Opaque(v) => s = Some(v.as_str()),
            Value::Int(v) => i = Some(*v),
            Value::Float(v) => f = Some(*v),
            Value::Bool(v) => b = Some(*v),
            Value::StrArray(v) => ss = Some(v),
            Value::IntArray(v) => is = Some(v),
            Value::FloatArray(v) => fs = Some(v),
            Value::BoolArray(v) => bs = Some(v),
        }
        self.str.append_option(s);
        self.int.append_option(i);
        self.float.append_option(f);
        self.bool.append_option(b);
        append_list(
            &mut self.strs,
            ss.map(|v| v.iter().map(|x| Some(x.as_str()))),
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

    /// The finished column.
    pub fn finish(&mut self) -> ArrayRef {
        let offsets = std::mem::take(&mut self.offsets);
        let offsets = if offsets.is_empty() { vec![0] } else { offsets };
        self.len = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.key.finish()),
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
    B: datafusion::arrow::array::ArrayBuilder,
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

/// Reads attribute lists back.
pub struct EntryListReader<'a> {
    list: &'a ListArray,
    key: &'a StringArray,
    value_type: &'a Int8Array,
    str: &'a StringArray,
    int: &'a Int64Array,
    float: &'a Float64Array,
    bool: &'a BooleanArray,
    strs: &'a ListArray,
    ints: &'a ListArray,
    floats: &'a ListArray,
    bools: &'a ListArray,
}

fn col<'a, T: 'static>(s: &'a StructArray, name: &str) -> Result<&'a T, String> {
    s.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("attribute entries lack a valid `{name}` field"))
}

impl<'a> EntryListReader<'a> {
    /// Wraps an attribute list column.
    pub fn new(column: &'a dyn Array) -> Result<Self, String> {
        let list = column
            .as_any()
            .downcast_ref::<ListArray>()
            .ok_or("attribute column is not a list")?;
        let s = list
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or("attribute entries are not structs")?;
        Ok(EntryListReader {
            list,
            key: col(s, "key")?,
            value_type: col(s, "type")?,
            str: col(s, "str")?,
            int: col(s, "int")?,
            float: col(s, "float")?,
            bool: col(s, "bool")?,
            strs: col(s, "strs")?,
            ints: col(s, "ints")?,
            floats: col(s, "floats")?,
            bools: col(s, "bools")?,
        })
    }

    /// The attributes of row `row`, appended to `out`.
    pub fn read(&self, row: usize, out: &mut Vec<KeyValue>) -> Result<(), String> {
        if self.list.is_null(row) {
            return Ok(());
        }
        let offsets = self.list.value_offsets();
        for i in offsets[row] as usize..offsets[row + 1] as usize {
            let code = self.value_type.value(i);
            let value_type = ValueType::from_code(code)
                .ok_or_else(|| format!("unknown attribute type code {code}"))?;
            let value = match value_type {
                ValueType::Str => Value::Str(self.str.value(i).to_string()),
                ValueType::Opaque => Value::Opaque(self.str.value(i).to_string()),
                ValueType::Int => Value::Int(self.int.value(i)),
                ValueType::Float => Value::Float(self.float.value(i)),
                ValueType::Bool => Value::Bool(self.bool.value(i)),
                ValueType::StrArray => {
                    Value::StrArray(list_values::<StringArray, _>(self.strs, i, |a, j| {
                        a.value(j).to_string()
                    })?)
                }
                ValueType::IntArray => {
                    Value::IntArray(list_values::<Int64Array, _>(self.ints, i, |a, j| {
                        a.value(j)
                    })?)
                }
                ValueType::FloatArray => {
                    Value::FloatArray(list_values::<Float64Array, _>(self.floats, i, |a, j| {
                        a.value(j)
                    })?)
                }
                ValueType::BoolArray => {
                    Value::BoolArray(list_values::<BooleanArray, _>(self.bools, i, |a, j| {
                        a.value(j)
                    })?)
                }
            };
            out.push(KeyValue {
                key: self.key.value(i).to_string(),
                value,
            });
        }
        Ok(())
    }
}

/// The items of list `row` of a list column, converted by `get`.
pub fn list_values<A: 'static, T>(
    list: &ListArray,
    row: usize,
    get: impl Fn(&A, usize) -> T,
) -> Result<Vec<T>, String> {
    let values = list
        .values()
        .as_any()
        .downcast_ref::<A>()
        .ok_or("list items have an unexpected type")?;
    let offsets = list.value_offsets();
    Ok((offsets[row] as usize..offsets[row + 1] as usize)
        .map(|j| get(values, j))
        .collect())
}

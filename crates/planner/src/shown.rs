//! Attribute values shown with results, read straight from a plain column of the span
//! table where one holds the attribute's only value for every span (see
//! [`crate::native::native_column`]): results show a few distinct values many times, so
//! each distinct value is made once, as the row evaluator would show it, instead of
//! through the evaluator for every span.

use crate::error::PlanError;
use std::borrow::Cow;

use datafusion::arrow::array::{
    Array, BooleanArray, Float64Array, Int8Array, Int64Array, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;

use crate::eval::value::Val;
use crate::native::Holds;
use traceql_format::value::Value;

/// The type a plain column holding `holds` is cast to for display.
pub fn plain_type(holds: Holds) -> DataType {
    match holds {
        Holds::Str => DataType::Utf8,
        Holds::Int => DataType::Int64,
        Holds::UInt => DataType::UInt64,
        Holds::Float => DataType::Float64,
        Holds::Bool => DataType::Boolean,
        Holds::Status | Holds::Kind => DataType::Int8,
    }
}

/// A value of a plain column, standing for the value it is shown as: the text of a
/// string, the bits of anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlainValue<'a> {
    /// A string.
    Str(&'a str),
    /// A number, boolean or code, as 64 bits.
    Bits(u64),
}

fn array<T: 'static>(array: &dyn Array) -> Result<&T> {
    array.as_any().downcast_ref::<T>().ok_or_else(|| {
        PlanError::internal(format!(
            "a shown attribute column holds {}",
            array.data_type()
        ))
    })
}

/// The value at `row` of `values`, a plain column holding `holds` cast to
/// [`plain_type`]; `None` if null.
pub fn plain_value(holds: Holds, values: &dyn Array, row: usize) -> Result<Option<PlainValue<'_>>> {
    if values.is_null(row) {
        return Ok(None);
    }
    Ok(Some(match holds {
        Holds::Str => PlainValue::Str(array::<StringArray>(values)?.value(row)),
        Holds::Int => PlainValue::Bits(array::<Int64Array>(values)?.value(row) as u64),
        Holds::UInt => PlainValue::Bits(array::<UInt64Array>(values)?.value(row)),
        Holds::Float => PlainValue::Bits(array::<Float64Array>(values)?.value(row).to_bits()),
        Holds::Bool => PlainValue::Bits(u64::from(array::<BooleanArray>(values)?.value(row))),
        Holds::Status | Holds::Kind => {
            PlainValue::Bits(array::<Int8Array>(values)?.value(row) as u8 as u64)
        }
    }))
}

/// The value `value` (of a column holding `holds`) is shown as: what the row evaluator
/// shows for the same field; `None` for bits in a column of strings.
pub fn plain_shown(holds: Holds, value: PlainValue<'_>) -> Option<Value> {
    let val = match (holds, value) {
        (_, PlainValue::Str(s)) => Val::Str(Cow::Borrowed(s)),
        (Holds::Int, PlainValue::Bits(b)) => Val::Int(b as i64),
        (Holds::UInt, PlainValue::Bits(b)) => Val::Dur(b as i64),
        (Holds::Float, PlainValue::Bits(b)) => Val::Float(f64::from_bits(b)),
        (Holds::Bool, PlainValue::Bits(b)) => Val::Bool(b != 0),
        (Holds::Status, PlainValue::Bits(b)) => Val::Status(b as u8 as i8),
        (Holds::Kind, PlainValue::Bits(b)) => Val::Kind(b as u8 as i8),
        (Holds::Str, PlainValue::Bits(_)) => return None,
    };
    Some(val.shown())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_shown_as_the_evaluator_shows_them() {
        let cases: [(Holds, PlainValue, Val); 7] = [
            (
                Holds::Str,
                PlainValue::Str("a\"b"),
                Val::Str(Cow::Borrowed("a\"b")),
            ),
            (Holds::Int, PlainValue::Bits(-5i64 as u64), Val::Int(-5)),
            (
                Holds::UInt,
                PlainValue::Bits(1_500_000),
                Val::Dur(1_500_000),
            ),
            (
                Holds::Float,
                PlainValue::Bits(2.5f64.to_bits()),
                Val::Float(2.5),
            ),
            (Holds::Bool, PlainValue::Bits(1), Val::Bool(true)),
            (Holds::Status, PlainValue::Bits(2), Val::Status(2)),
            (Holds::Kind, PlainValue::Bits(3), Val::Kind(3)),
        ];
        for (holds, plain, val) in cases {
            assert_eq!(plain_shown(holds, plain), Some(val.shown()));
        }
        let ints = Int64Array::from(vec![Some(-5), None]);
        assert_eq!(
            plain_value(Holds::Int, &ints, 0).unwrap(),
            Some(PlainValue::Bits(-5i64 as u64))
        );
        assert_eq!(plain_value(Holds::Int, &ints, 1).unwrap(), None);
        assert!(plain_value(Holds::Str, &ints, 0).is_err());
    }
}

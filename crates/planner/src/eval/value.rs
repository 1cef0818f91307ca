//! Runtime values of field expressions and TraceQL's rules for comparing and combining
//! them: one numeric family (int, float, duration), no coercion between other types,
//! any-element semantics for arrays, and `false` (never an error) on a type mismatch.

use crate::error::PlanError;
use std::borrow::Cow;
use std::cmp::Ordering;

use datafusion::error::Result;
use regex::Regex;
use traceql_format::codes::{kind, status};
use traceql_format::display::go_duration;
use traceql_format::value::{Value, ValueRef};
use traceql_parser::ast::BinaryOp;

/// One value of an attribute or intrinsic for one span.
#[derive(Clone, Debug, PartialEq)]
pub enum Val<'a> {
    /// A string.
    Str(Cow<'a, str>),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A duration in nanoseconds.
    Dur(i64),
    /// A boolean.
    Bool(bool),
    /// A span status (OTLP code: 0 unset, 1 ok, 2 error).
    Status(i8),
    /// A span kind (OTLP code).
    Kind(i8),
    /// An array attribute.
    Arr(Arr<'a>),
}

/// An array attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Arr<'a> {
    /// Strings.
    Str(Vec<&'a str>),
    /// Integers.
    Int(Vec<i64>),
    /// Floats.
    Float(Vec<f64>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl Arr<'_> {
    fn elements(&self) -> Vec<Val<'_>> {
        match self {
            Arr::Str(v) => v.iter().map(|s| Val::Str(Cow::Borrowed(*s))).collect(),
            Arr::Int(v) => v.iter().map(|i| Val::Int(*i)).collect(),
            Arr::Float(v) => v.iter().map(|f| Val::Float(*f)).collect(),
            Arr::Bool(v) => v.iter().map(|b| Val::Bool(*b)).collect(),
        }
    }
}

impl Val<'_> {
    /// The order in which the values of a multi-valued attribute are presented.
    pub fn type_rank(&self) -> u8 {
        match self {
            Val::Str(_) => 0,
            Val::Int(_) => 1,
            Val::Float(_) => 2,
            Val::Bool(_) => 3,
            Val::Dur(_) => 4,
            Val::Status(_) => 5,
            Val::Kind(_) => 6,
            Val::Arr(_) => 7,
        }
    }

    /// The value as a number, if it is in the numeric family.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(i) | Val::Dur(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// Compares two scalar values with a comparison operator. `None` means the types do
/// not compare (the comparison is false).
fn compare_scalars(op: BinaryOp, a: &Val, b: &Val) -> Option<bool> {
    let ordering = match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Dur(x), Val::Dur(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Val::Bool(x), Val::Bool(y)) => return equality(op, x == y),
        (Val::Status(x), Val::Status(y)) | (Val::Kind(x), Val::Kind(y)) => {
            return equality(op, x == y);
        }
        _ => {
            let (x, y) = (a.as_f64()?, b.as_f64()?);
            match op {
                BinaryOp::Eq => return Some(x == y),
                BinaryOp::Neq => return Some(x != y),
                _ => x.partial_cmp(&y)?,
            }
        }
    };
    Some(match op {
        BinaryOp::Eq => ordering == Ordering::Equal,
        BinaryOp::Neq => ordering != Ordering::Equal,
        BinaryOp::Lt => ordering == Ordering::Less,
        BinaryOp::Lte => ordering != Ordering::Greater,
        BinaryOp::Gt => ordering == Ordering::Greater,
        BinaryOp::Gte => ordering != Ordering::Less,
        _ => return None,
    })
}

fn equality(op: BinaryOp, equal: bool) -> Option<bool> {
    match op {
        BinaryOp::Eq => Some(equal),
        BinaryOp::Neq => Some(!equal),
        _ => None,
    }
}

/// The operator with its operands swapped: `a < b` is `b > a`.
pub fn mirror(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Lte => BinaryOp::Gte,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Gte => BinaryOp::Lte,
        other => other,
    }
}

/// `a op b` for a comparison operator, with arrays on either side: `=` and the
/// orderings hold if any element satisfies them, `!=` if no element equals.
pub fn compare(op: BinaryOp, a: &Val, b: &Val) -> Result<bool> {
    match (a, b) {
        (Val::Arr(_), Val::Arr(_)) => Err(PlanError::query(format!(
            "cannot compare two arrays with `{}`",
            op.as_str()
        ))),
        (Val::Arr(arr), other) => Ok(compare_array(op, arr, other)),
        (other, Val::Arr(arr)) => Ok(compare_array(mirror(op), arr, other)),
        _ => Ok(compare_scalars(op, a, b).unwrap_or(false)),
    }
}

fn compare_array(op: BinaryOp, arr: &Arr, other: &Val) -> bool {
    let elements = arr.elements();
    if op == BinaryOp::Neq {
        // `!=` holds if the elements are comparable with `other` and none equals it.
        let equal: Vec<bool> = elements
            .iter()
            .filter_map(|e| compare_scalars(BinaryOp::Eq, e, other))
            .collect();
        return !equal.is_empty() && !equal.contains(&true);
    }
    elements
        .iter()
        .any(|e| compare_scalars(op, e, other).unwrap_or(false))
}

/// Regex match of `a` (a string or string array) against `re`; `negate` for `!~`.
/// Anything that is not a string gives `false` either way.
pub fn regex_match(re: &Regex, a: &Val, negate: bool) -> bool {
    match a {
        Val::Str(s) => re.is_match(s) != negate,
        Val::Arr(Arr::Str(items)) => {
            let any = items.iter().any(|s| re.is_match(s));
            if negate { !any } else { any }
        }
        _ => false,
    }
}

/// `a op b` for an arithmetic operator. `Ok(None)` when an operand is not a number
/// (the enclosing comparison is then false); an error for integer division by zero and
/// arithmetic on arrays.
pub fn arithmetic<'a>(op: BinaryOp, a: &Val, b: &Val) -> Result<Option<Val<'a>>> {
    if matches!(a, Val::Arr(_)) || matches!(b, Val::Arr(_)) {
        return Err(PlanError::query(format!(
            "arithmetic `{}` on an array attribute",
            op.as_str()
        )));
    }
    if let (Val::Int(x), Val::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        let r = match op {
            BinaryOp::Add => x.wrapping_add(y),
            BinaryOp::Sub => x.wrapping_sub(y),
            BinaryOp::Mul => x.wrapping_mul(y),
            BinaryOp::Div | BinaryOp::Mod if y == 0 => {
                return Err(PlanError::query("integer division by zero".to_string()));
            }
            BinaryOp::Div => x.wrapping_div(y),
            BinaryOp::Mod => x.wrapping_rem(y),
            BinaryOp::Pow => (x as f64).powf(y as f64) as i64,
            _ => return Ok(None),
        };
        return Ok(Some(Val::Int(r)));
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Ok(None);
    };
    let r = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Mod => x % y,
        BinaryOp::Pow => x.powf(y),
        _ => return Ok(None),
    };
    Ok(Some(Val::Float(r)))
}

/// Unary minus; `None` for a non-number.
pub fn negate<'a>(a: &Val) -> Result<Option<Val<'a>>> {
    Ok(match a {
        Val::Int(i) => Some(Val::Int(i.wrapping_neg())),
        Val::Dur(d) => Some(Val::Dur(d.wrapping_neg())),
        Val::Float(f) => Some(Val::Float(-f)),
        Val::Arr(_) => {
            return Err(PlanError::query(
                "arithmetic `-` on an array attribute".to_string(),
            ));
        }
        _ => None,
    })
}

impl Val<'_> {
    /// The value as results show it, borrowed where it can be: durations in Go's
    /// notation (`1.5ms`), status and kind as their words, everything else as itself.
    pub fn with_shown<T>(&self, f: impl FnOnce(&ValueRef<'_>) -> T) -> T {
        match self {
            Val::Str(s) => f(&ValueRef::Str(s)),
            Val::Int(i) => f(&ValueRef::Int(*i)),
            Val::Float(x) => f(&ValueRef::Float(*x)),
            Val::Dur(d) => f(&ValueRef::Str(&go_duration(*d))),
            Val::Bool(b) => f(&ValueRef::Bool(*b)),
            Val::Status(s) => f(&ValueRef::Str(status::name(*s))),
            Val::Kind(k) => f(&ValueRef::Str(kind::name(*k))),
            Val::Arr(Arr::Str(v)) => f(&ValueRef::StrArray(v.clone())),
            Val::Arr(Arr::Int(v)) => f(&ValueRef::IntArray(v.clone())),
            Val::Arr(Arr::Float(v)) => f(&ValueRef::FloatArray(v.clone())),
            Val::Arr(Arr::Bool(v)) => f(&ValueRef::BoolArray(v.clone())),
        }
    }

    /// The value as results show it (see [`Val::with_shown`]), owned.
    pub fn shown(&self) -> Value {
        self.with_shown(|v| v.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Val<'_> {
        Val::Str(Cow::Borrowed(v))
    }

    #[test]
    fn numbers_compare_across_int_float_and_duration() {
        assert!(compare(BinaryOp::Eq, &Val::Int(123), &Val::Float(123.0)).unwrap());
        assert!(compare(BinaryOp::Lt, &Val::Int(1), &Val::Dur(3_600_000_000_000)).unwrap());
        assert!(!compare(BinaryOp::Gt, &s("200"), &Val::Int(100)).unwrap());
    }

    #[test]
    fn mismatched_types_are_false_even_for_not_equal() {
        assert!(!compare(BinaryOp::Neq, &s("x"), &Val::Int(1)).unwrap());
        assert!(!compare(BinaryOp::Eq, &Val::Int(2), &Val::Status(2)).unwrap());
    }

    #[test]
    fn arrays_use_any_element_semantics() {
        let arr = Val::Arr(Arr::Str(vec!["bar", "baz"]));
        assert!(compare(BinaryOp::Eq, &arr, &s("bar")).unwrap());
        assert!(!compare(BinaryOp::Neq, &arr, &s("bar")).unwrap());
        assert!(compare(BinaryOp::Neq, &arr, &s("qux")).unwrap());
        let ints = Val::Arr(Arr::Int(vec![200, 500]));
        assert!(compare(BinaryOp::Gt, &ints, &Val::Int(400)).unwrap());
        assert!(compare(BinaryOp::Lt, &Val::Int(400), &ints).unwrap());
        assert!(compare(BinaryOp::Eq, &ints, &ints).is_err());
    }

    #[test]
    fn integer_arithmetic_follows_go() {
        let r = |op, a, b| arithmetic(op, &Val::Int(a), &Val::Int(b)).unwrap();
        assert_eq!(r(BinaryOp::Div, -7, 2), Some(Val::Int(-3)));
        assert_eq!(r(BinaryOp::Mod, -7, 2), Some(Val::Int(-1)));
        assert_eq!(r(BinaryOp::Pow, 2, 3), Some(Val::Int(8)));
        assert!(arithmetic(BinaryOp::Div, &Val::Int(1), &Val::Int(0)).is_err());
        assert_eq!(
            arithmetic(BinaryOp::Add, &Val::Dur(60), &Val::Dur(60)).unwrap(),
            Some(Val::Float(120.0))
        );
    }
}

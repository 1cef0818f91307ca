//! A reference evaluator: TraceQL search over in-memory spans, written directly from
//! the language reference with no regard for speed. Relations come from parent span
//! ids (not nested-set numbers), attributes from the span model (not columns).
//!
//! Semantics chosen where Tempo is silent or accidental (the engine documents the
//! same): unscoped `.x` reads the span's attribute if it has one, else the resource's,
//! else the instrumentation scope's; a comparison holds if any value of a repeated key
//! satisfies it; an attribute with only unqueryable values (bytes, key-value lists,
//! empty or mixed arrays) is neither `= nil` nor `!= nil`; `!` and `&&`/`||`
//! on non-booleans give false (except `true || x` and `x || true`); event and link
//! conditions hold if some event (link) satisfies them, and a span without events never
//! satisfies `event.x = nil`.

use std::collections::HashMap;

use traceql_format::codes::{kind, status};
use traceql_format::ids::hex;
use traceql_format::model::Span;
use traceql_format::value::Value;
use traceql_parser::ast::*;

/// A value of a field expression for one span.
#[derive(Clone, Debug, PartialEq)]
enum V {
    Str(String),
    Int(i64),
    Float(f64),
    Dur(i64),
    Bool(bool),
    Status(i8),
    Kind(i8),
    Arr(Vec<V>),
}

fn num(v: &V) -> Option<f64> {
    match v {
        V::Int(i) | V::Dur(i) => Some(*i as f64),
        V::Float(f) => Some(*f),
        _ => None,
    }
}

fn from_value(v: &Value) -> Option<V> {
    Some(match v {
        Value::Str(s) => V::Str(s.clone()),
        Value::Int(i) => V::Int(*i),
        Value::Float(f) => V::Float(*f),
        Value::Bool(b) => V::Bool(*b),
        Value::StrArray(a) => V::Arr(a.iter().cloned().map(V::Str).collect()),
        Value::IntArray(a) => V::Arr(a.iter().copied().map(V::Int).collect()),
        Value::FloatArray(a) => V::Arr(a.iter().copied().map(V::Float).collect()),
        Value::BoolArray(a) => V::Arr(a.iter().copied().map(V::Bool).collect()),
        Value::Opaque(_) => return None,
    })
}

/// Scalar comparison; `None` if the types do not compare.
fn cmp_scalar(op: BinaryOp, a: &V, b: &V) -> Option<bool> {
    use std::cmp::Ordering::*;
    let ord = match (a, b) {
        (V::Str(x), V::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (V::Int(x), V::Int(y)) | (V::Dur(x), V::Dur(y)) => x.cmp(y),
        (V::Bool(x), V::Bool(y)) => return eq_only(op, x == y),
        (V::Status(x), V::Status(y)) | (V::Kind(x), V::Kind(y)) => return eq_only(op, x == y),
        _ => {
            let (x, y) = (num(a)?, num(b)?);
            if op == BinaryOp::Eq {
                return Some(x == y);
            }
            if op == BinaryOp::Neq {
                return Some(x != y);
            }
            x.partial_cmp(&y)?
        }
    };
    Some(match op {
        BinaryOp::Eq => ord == Equal,
        BinaryOp::Neq => ord != Equal,
        BinaryOp::Lt => ord == Less,
        BinaryOp::Lte => ord != Greater,
        BinaryOp::Gt => ord == Greater,
        BinaryOp::Gte => ord != Less,
        _ => return None,
    })
}

fn eq_only(op: BinaryOp, equal: bool) -> Option<bool> {
    match op {
        BinaryOp::Eq => Some(equal),
        BinaryOp::Neq => Some(!equal),
        _ => None,
    }
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Lte => BinaryOp::Gte,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Gte => BinaryOp::Lte,
        o => o,
    }
}

/// Comparison with array rules: any element for `=` and orderings, none equal for `!=`.
fn compare(op: BinaryOp, a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Arr(_), V::Arr(_)) => false,
        (V::Arr(items), x) => array_compare(op, items, x),
        (x, V::Arr(items)) => array_compare(flip(op), items, x),
        _ => cmp_scalar(op, a, b) == Some(true),
    }
}

fn array_compare(op: BinaryOp, items: &[V], x: &V) -> bool {
    if op == BinaryOp::Neq {
        let eqs: Vec<bool> = items
            .iter()
            .filter_map(|i| cmp_scalar(BinaryOp::Eq, i, x))
            .collect();
        return !eqs.is_empty() && eqs.iter().all(|e| !e);
    }
    items.iter().any(|i| cmp_scalar(op, i, x) == Some(true))
}

fn arith(op: BinaryOp, a: &V, b: &V) -> Option<V> {
    if let (V::Int(x), V::Int(y)) = (a, b) {
        return Some(V::Int(match op {
            BinaryOp::Add => x.wrapping_add(*y),
            BinaryOp::Sub => x.wrapping_sub(*y),
            BinaryOp::Mul => x.wrapping_mul(*y),
            BinaryOp::Div if *y != 0 => x.wrapping_div(*y),
            BinaryOp::Mod if *y != 0 => x.wrapping_rem(*y),
            BinaryOp::Pow => (*x as f64).powf(*y as f64) as i64,
            _ => return None,
        }));
    }
    let (x, y) = (num(a)?, num(b)?);
    Some(V::Float(match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Mod => x % y,
        BinaryOp::Pow => x.powf(y),
        _ => return None,
    }))
}

fn rank(v: &V) -> u8 {
    match v {
        V::Str(_) => 0,
        V::Int(_) => 1,
        V::Float(_) => 2,
        V::Bool(_) => 3,
        V::Dur(_) => 4,
        V::Status(_) => 5,
        V::Kind(_) => 6,
        V::Arr(_) => 7,
    }
}

/// One trace, with the relations between its spans.
pub struct Trace<'a> {
    spans: Vec<&'a Span>,
}

/// Where an expression is evaluated: a span, and one of its events and links.
#[derive(Clone, Copy)]
struct At {
    span: usize,
    event: Option<usize>,
    link: Option<usize>,
}

impl<'a> Trace<'a> {
    /// The trace of `spans` (all of one trace id).
    pub fn new(mut spans: Vec<&'a Span>) -> Self {
        spans.sort_by_key(|s| (s.start_unix_nano, s.span_id));
        Trace { spans }
    }

    fn parent(&self, i: usize) -> Option<usize> {
        let p = self.spans[i].parent_span_id?;
        self.spans.iter().position(|s| s.span_id == p)
    }

    fn is_child(&self, a: usize, b: usize) -> bool {
        self.parent(a) == Some(b)
    }

    fn is_descendant(&self, a: usize, b: usize) -> bool {
        let mut cur = self.parent(a);
        let mut steps = 0;
        while let Some(p) = cur {
            if p == b {
                return true;
            }
            steps += 1;
            if steps > self.spans.len() {
                return false;
            }
            cur = self.parent(p);
        }
        false
    }

    fn is_sibling(&self, a: usize, b: usize) -> bool {
        a != b && self.spans[a].parent_span_id == self.spans[b].parent_span_id
    }

    fn root(&self) -> Option<&'a Span> {
        self.spans
            .iter()
            .rev()
            .find(|s| s.parent_span_id.is_none())
            .copied()
    }

    /// Whether `e` is an attribute that the span has, with a value TraceQL cannot query.
    fn unqueryable(&self, e: &FieldExpr, at: At) -> bool {
        let FieldExprKind::Field(Field::Attribute(attr)) = &e.kind else {
            return false;
        };
        let span = self.spans[at.span];
        let lists: Vec<&[traceql_format::value::KeyValue]> = match attr.scope {
            AttributeScope::Span => vec![&span.attributes],
            AttributeScope::Resource => vec![&span.resource.attributes],
            AttributeScope::Instrumentation => vec![&span.scope.attributes],
            AttributeScope::Unscoped => vec![
                &span.attributes,
                &span.resource.attributes,
                &span.scope.attributes,
            ],
            AttributeScope::Event => at
                .event
                .map(|i| vec![&span.events[i].attributes[..]])
                .unwrap_or_default(),
            AttributeScope::Link => at
                .link
                .map(|i| vec![&span.links[i].attributes[..]])
                .unwrap_or_default(),
        };
        lists.iter().any(|list| {
            list.iter()
                .any(|kv| kv.key == attr.name && matches!(kv.value, Value::Opaque(_)))
        })
    }

    fn attribute(&self, attr: &Attribute, at: At) -> Vec<V> {
        let span = self.spans[at.span];
        let pick = |list: &[traceql_format::value::KeyValue]| -> Vec<V> {
            list.iter()
                .filter(|kv| kv.key == attr.name)
                .filter_map(|kv| from_value(&kv.value))
                .collect()
        };
        match attr.scope {
            AttributeScope::Span => pick(&span.attributes),
            AttributeScope::Resource => pick(&span.resource.attributes),
            AttributeScope::Instrumentation => pick(&span.scope.attributes),
            AttributeScope::Unscoped => [
                &span.attributes,
                &span.resource.attributes,
                &span.scope.attributes,
            ]
            .into_iter()
            .map(|list| pick(list))
            .find(|v| !v.is_empty())
            .unwrap_or_default(),
            AttributeScope::Event => at
                .event
                .map(|e| pick(&span.events[e].attributes))
                .unwrap_or_default(),
            AttributeScope::Link => at
                .link
                .map(|l| pick(&span.links[l].attributes))
                .unwrap_or_default(),
        }
    }

    fn intrinsic(&self, i: Intrinsic, at: At) -> Vec<V> {
        let s = self.spans[at.span];
        let trace_start = self
            .spans
            .iter()
            .map(|s| s.start_unix_nano)
            .min()
            .unwrap_or(0);
        let trace_end = self
            .spans
            .iter()
            .map(|s| s.end_unix_nano.max(s.start_unix_nano))
            .max()
            .unwrap_or(0);
        let v = match i {
            Intrinsic::Name => V::Str(s.name.clone()),
            Intrinsic::Duration => V::Dur(s.duration_nano() as i64),
            Intrinsic::Status => V::Status(s.status_code),
            Intrinsic::StatusMessage => V::Str(s.status_message.clone()),
            Intrinsic::Kind => V::Kind(s.kind),
            Intrinsic::SpanId => V::Str(hex(&s.span_id)),
            Intrinsic::ParentId => V::Str(
                s.parent_span_id
                    .map(|p| hex(&p))
                    .unwrap_or_else(|| "0".repeat(16)),
            ),
            Intrinsic::TraceId => V::Str(hex(&s.trace_id).trim_start_matches('0').to_string()),
            Intrinsic::TraceDuration => V::Dur((trace_end - trace_start) as i64),
            Intrinsic::RootName => match self.root() {
                Some(r) => V::Str(r.name.clone()),
                None => return vec![],
            },
            Intrinsic::RootService => match self.root().and_then(|r| r.resource.service_name()) {
                Some(n) => V::Str(n.to_string()),
                None => return vec![],
            },
            Intrinsic::EventName => match at.event {
                Some(e) => V::Str(s.events[e].name.clone()),
                None => return vec![],
            },
            Intrinsic::EventTimeSinceStart => match at.event {
                Some(e) => V::Dur(s.events[e].time_unix_nano as i64 - s.start_unix_nano as i64),
                None => return vec![],
            },
            Intrinsic::LinkTraceId => match at.link {
                Some(l) => V::Str(
                    hex(&s.links[l].trace_id)
                        .trim_start_matches('0')
                        .to_string(),
                ),
                None => return vec![],
            },
            Intrinsic::LinkSpanId => match at.link {
                Some(l) => V::Str(hex(&s.links[l].span_id)),
                None => return vec![],
            },
            Intrinsic::InstrumentationName => V::Str(s.scope.name.clone()),
            Intrinsic::InstrumentationVersion => V::Str(s.scope.version.clone()),
            Intrinsic::NestedSetLeft
            | Intrinsic::NestedSetRight
            | Intrinsic::NestedSetParent
            | Intrinsic::ChildCount
            | Intrinsic::Parent => panic!("the reference does not model {i:?}"),
        };
        vec![v]
    }

    fn eval(&self, e: &FieldExpr, at: At) -> Vec<V> {
        match &e.kind {
            FieldExprKind::Literal(l) => vec![match l {
                Literal::Int(i) => V::Int(*i),
                Literal::Float(f) => V::Float(*f),
                Literal::Duration(d) => V::Dur(*d),
                Literal::String(s) => V::Str(s.clone()),
                Literal::Bool(b) => V::Bool(*b),
                Literal::Status(s) => V::Status(status::code(*s)),
                Literal::Kind(k) => V::Kind(kind::code(*k)),
                Literal::Nil => return vec![],
            }],
            FieldExprKind::Field(Field::Attribute(a)) => self.attribute(a, at),
            FieldExprKind::Field(Field::Intrinsic(i)) => self.intrinsic(*i, at),
            FieldExprKind::Unary {
                op: UnaryOp::Neg,
                expr,
            } => self
                .eval(expr, at)
                .into_iter()
                .filter_map(|v| match v {
                    V::Int(i) => Some(V::Int(i.wrapping_neg())),
                    V::Dur(d) => Some(V::Dur(d.wrapping_neg())),
                    V::Float(f) => Some(V::Float(-f)),
                    _ => None,
                })
                .collect(),
            FieldExprKind::Unary {
                op: UnaryOp::Not,
                expr,
            } => match self.eval(expr, at).first() {
                Some(V::Bool(b)) => vec![V::Bool(!b)],
                _ => vec![V::Bool(false)],
            },
            FieldExprKind::Binary { op, lhs, rhs } if op.is_arithmetic() => {
                let (l, r) = (self.eval(lhs, at), self.eval(rhs, at));
                l.iter()
                    .flat_map(|x| r.iter().filter_map(move |y| arith(*op, x, y)))
                    .collect()
            }
            FieldExprKind::Binary { op, lhs, rhs } => vec![V::Bool(self.binary(*op, lhs, rhs, at))],
        }
    }

    fn boolean(&self, e: &FieldExpr, at: At) -> Option<bool> {
        match self.eval(e, at).first() {
            Some(V::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn binary(&self, op: BinaryOp, lhs: &FieldExpr, rhs: &FieldExpr, at: At) -> bool {
        let nil = |e: &FieldExpr| matches!(e.kind, FieldExprKind::Literal(Literal::Nil));
        match op {
            BinaryOp::And => {
                self.boolean(lhs, at) == Some(true) && self.boolean(rhs, at) == Some(true)
            }
            BinaryOp::Or => {
                self.boolean(lhs, at) == Some(true) || self.boolean(rhs, at) == Some(true)
            }
            BinaryOp::Eq | BinaryOp::Neq if nil(lhs) || nil(rhs) => {
                let other = if nil(lhs) { rhs } else { lhs };
                if nil(other) {
                    return false;
                }
                if self.needs_missing_element(other, at) {
                    return false;
                }
                let exists = !self.eval(other, at).is_empty();
                if op == BinaryOp::Eq {
                    !exists && !self.unqueryable(other, at)
                } else {
                    exists
                }
            }
            BinaryOp::Regex | BinaryOp::NotRegex => {
                let FieldExprKind::Literal(Literal::String(p)) = &rhs.kind else {
                    return false;
                };
                let re = regex::Regex::new(&format!("^(?s:{p})$")).unwrap();
                let negate = op == BinaryOp::NotRegex;
                self.eval(lhs, at).iter().any(|v| match v {
                    V::Str(s) => re.is_match(s) != negate,
                    V::Arr(items) => {
                        let any = items
                            .iter()
                            .any(|i| matches!(i, V::Str(s) if re.is_match(s)));
                        any != negate
                    }
                    _ => false,
                })
            }
            op if op.is_arithmetic() => false,
            op => {
                let (mut l, mut r) = (self.eval(lhs, at), self.eval(rhs, at));
                for (id_side, other) in [(lhs, &mut r), (rhs, &mut l)] {
                    normalise_id_literal(id_side, other);
                }
                l.iter().any(|x| r.iter().any(|y| compare(op, x, y)))
            }
        }
    }

    /// Whether `e` reads an event (link) field and `at` has no event (link).
    fn needs_missing_element(&self, e: &FieldExpr, at: At) -> bool {
        let (events, links) = element_scopes_deep(e);
        (events && at.event.is_none()) || (links && at.link.is_none())
    }

    /// Whether span `i` satisfies filter `e` (for some event and link, if `e` reads them).
    fn matches(&self, e: &FieldExpr, i: usize) -> bool {
        let (events, links) = element_scopes_deep(e);
        let span = self.spans[i];
        let ev: Vec<Option<usize>> = if events && !span.events.is_empty() {
            (0..span.events.len()).map(Some).collect()
        } else {
            vec![None]
        };
        let ln: Vec<Option<usize>> = if links && !span.links.is_empty() {
            (0..span.links.len()).map(Some).collect()
        } else {
            vec![None]
        };
        ev.iter().any(|&event| {
            ln.iter().any(|&link| {
                self.boolean(
                    e,
                    At {
                        span: i,
                        event,
                        link,
                    },
                ) == Some(true)
            })
        })
    }

    /// The first value of `e` on span `i` (for `by()`): strings first, then integers,
    /// floats, booleans, durations, status, kind, arrays.
    fn value(&self, e: &FieldExpr, i: usize) -> Option<V> {
        let mut values = self.values(e, i);
        values.sort_by_key(rank);
        values.into_iter().next()
    }

    /// The first numeric value of `e` on span `i` (for aggregates).
    fn number(&self, e: &FieldExpr, i: usize) -> Option<f64> {
        let mut values = self.values(e, i);
        values.sort_by_key(rank);
        values.iter().find_map(num)
    }

    /// All values of `e` on span `i`, for the first event/link that gives any.
    fn values(&self, e: &FieldExpr, i: usize) -> Vec<V> {
        let span = self.spans[i];
        let ev: Vec<Option<usize>> = if span.events.is_empty() {
            vec![None]
        } else {
            (0..span.events.len()).map(Some).collect()
        };
        let ln: Vec<Option<usize>> = if span.links.is_empty() {
            vec![None]
        } else {
            (0..span.links.len()).map(Some).collect()
        };
        for &event in &ev {
            for &link in &ln {
                let values = self.eval(
                    e,
                    At {
                        span: i,
                        event,
                        link,
                    },
                );
                if !values.is_empty() {
                    return values;
                }
            }
        }
        vec![]
    }
}

fn normalise_id_literal(id: &FieldExpr, other: &mut [V]) {
    let trim = match &id.kind {
        FieldExprKind::Field(Field::Intrinsic(Intrinsic::TraceId | Intrinsic::LinkTraceId)) => {
            false
        }
        FieldExprKind::Field(Field::Intrinsic(
            Intrinsic::SpanId | Intrinsic::ParentId | Intrinsic::LinkSpanId,
        )) => true,
        _ => return,
    };
    for v in other {
        if let V::Str(s) = v {
            let t = s.trim_start_matches('0');
            *s = if trim {
                format!("{t:0>16}")
            } else {
                t.to_string()
            };
        }
    }
}

fn element_scopes_deep(e: &FieldExpr) -> (bool, bool) {
    match &e.kind {
        FieldExprKind::Field(Field::Attribute(a)) => (
            a.scope == AttributeScope::Event,
            a.scope == AttributeScope::Link,
        ),
        FieldExprKind::Field(Field::Intrinsic(i)) => (
            matches!(i, Intrinsic::EventName | Intrinsic::EventTimeSinceStart),
            matches!(i, Intrinsic::LinkTraceId | Intrinsic::LinkSpanId),
        ),
        FieldExprKind::Unary { expr, .. } => element_scopes_deep(expr),
        FieldExprKind::Binary { lhs, rhs, .. } => {
            let (a, b) = element_scopes_deep(lhs);
            let (c, d) = element_scopes_deep(rhs);
            (a || c, b || d)
        }
        FieldExprKind::Literal(_) => (false, false),
    }
}

/// A spanset: span indexes of the trace.
pub type Set = Vec<usize>;

/// Why the reference could not evaluate a query.
#[derive(Debug)]
pub struct Skip;

impl Trace<'_> {
    /// The spansets `query` yields for this trace.
    pub fn search(&self, query: &Query) -> Result<Vec<Set>, Skip> {
        let QueryBody::Search(p) = &query.body else {
            return Err(Skip);
        };
        let all: Set = (0..self.spans.len()).collect();
        self.pipeline(p, vec![all])
    }

    fn pipeline(&self, p: &Pipeline, mut sets: Vec<Set>) -> Result<Vec<Set>, Skip> {
        for stage in &p.stages {
            sets = match stage {
                Stage::Spanset(e) => {
                    let mut out = Vec::new();
                    for set in &sets {
                        let r = self.spanset(e, set)?;
                        if !r.is_empty() {
                            out.push(r);
                        }
                    }
                    out
                }
                Stage::ScalarFilter(f) => {
                    let ScalarExprKind::Aggregate(agg) = &f.lhs.kind else {
                        return Err(Skip);
                    };
                    let threshold = constant(&f.rhs).ok_or(Skip)?;
                    sets.into_iter()
                        .filter(|set| {
                            let values: Vec<f64> = match agg.arg() {
                                None => vec![],
                                Some(e) => set.iter().filter_map(|&i| self.number(e, i)).collect(),
                            };
                            let v = match agg {
                                Aggregate::Count => set.len() as f64,
                                _ if values.is_empty() => return false,
                                Aggregate::Avg(_) => {
                                    values.iter().sum::<f64>() / values.len() as f64
                                }
                                Aggregate::Min(_) => {
                                    values.iter().copied().fold(f64::INFINITY, f64::min)
                                }
                                Aggregate::Max(_) => {
                                    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                                }
                                Aggregate::Sum(_) => values.iter().sum(),
                            };
                            match f.op {
                                ComparisonOp::Eq => v == threshold,
                                ComparisonOp::Neq => v != threshold,
                                ComparisonOp::Lt => v < threshold,
                                ComparisonOp::Lte => v <= threshold,
                                ComparisonOp::Gt => v > threshold,
                                ComparisonOp::Gte => v >= threshold,
                            }
                        })
                        .collect()
                }
                Stage::GroupBy { expr, .. } => {
                    let mut out = Vec::new();
                    for set in &sets {
                        let mut groups: Vec<(Option<String>, Set)> = Vec::new();
                        for &i in set {
                            let key = self.value(expr, i).map(|v| format!("{v:?}"));
                            match groups.iter_mut().find(|(k, _)| *k == key) {
                                Some((_, g)) => g.push(i),
                                None => groups.push((key, vec![i])),
                            }
                        }
                        out.extend(groups.into_iter().map(|(_, g)| g));
                    }
                    out
                }
                Stage::Select { .. } => sets,
                Stage::Coalesce { .. } => {
                    let mut merged: Set = sets.into_iter().flatten().collect();
                    merged.sort_unstable();
                    merged.dedup();
                    if merged.is_empty() {
                        vec![]
                    } else {
                        vec![merged]
                    }
                }
            };
        }
        Ok(sets)
    }

    fn spanset(&self, e: &SpansetExpr, input: &Set) -> Result<Set, Skip> {
        Ok(match &e.kind {
            SpansetExprKind::Filter(None) => input.clone(),
            SpansetExprKind::Filter(Some(f)) => input
                .iter()
                .copied()
                .filter(|&i| self.matches(f, i))
                .collect(),
            SpansetExprKind::Pipeline(p) => {
                let out = self.pipeline(p, vec![input.clone()])?;
                if out.len() > 1 {
                    return Err(Skip);
                }
                out.into_iter().next().unwrap_or_default()
            }
            SpansetExprKind::Binary { op, lhs, rhs } => {
                let l = self.spanset(lhs, input)?;
                let r = self.spanset(rhs, input)?;
                let union = |a: &Set, b: &Set| -> Set {
                    let mut u = a.clone();
                    u.extend(b.iter().copied().filter(|x| !a.contains(x)));
                    u
                };
                let child = |a: usize, b: usize| self.is_child(a, b);
                let desc = |a: usize, b: usize| self.is_descendant(a, b);
                let sib = |a: usize, b: usize| self.is_sibling(a, b);
                let rel: &dyn Fn(usize, usize) -> bool = match op {
                    SpansetOp::And => {
                        return Ok(if !l.is_empty() && !r.is_empty() {
                            union(&l, &r)
                        } else {
                            vec![]
                        });
                    }
                    SpansetOp::Or => return Ok(union(&l, &r)),
                    SpansetOp::Child | SpansetOp::NotChild | SpansetOp::UnionChild => {
                        &|x, y| child(x, y)
                    }
                    SpansetOp::Parent | SpansetOp::NotParent | SpansetOp::UnionParent => {
                        &|x, y| child(y, x)
                    }
                    SpansetOp::Descendant
                    | SpansetOp::NotDescendant
                    | SpansetOp::UnionDescendant => &|x, y| desc(x, y),
                    SpansetOp::Ancestor | SpansetOp::NotAncestor | SpansetOp::UnionAncestor => {
                        &|x, y| desc(y, x)
                    }
                    SpansetOp::Sibling | SpansetOp::NotSibling | SpansetOp::UnionSibling => {
                        &|x, y| sib(x, y)
                    }
                };
                // rel(r, l): right-hand span r stands in the relation to left-hand span l.
                let name = op.as_str();
                if name.starts_with('!') {
                    r.iter()
                        .copied()
                        .filter(|&x| !l.iter().any(|&y| rel(x, y)))
                        .collect()
                } else if name.starts_with('&') {
                    let rs: Set = r
                        .iter()
                        .copied()
                        .filter(|&x| l.iter().any(|&y| rel(x, y)))
                        .collect();
                    let ls: Set = l
                        .iter()
                        .copied()
                        .filter(|&y| r.iter().any(|&x| rel(x, y)))
                        .collect();
                    union(&rs, &ls)
                } else {
                    r.iter()
                        .copied()
                        .filter(|&x| l.iter().any(|&y| rel(x, y)))
                        .collect()
                }
            }
        })
    }
}

fn constant(e: &ScalarExpr) -> Option<f64> {
    fn go(e: &ScalarExpr) -> Option<V> {
        match &e.kind {
            ScalarExprKind::Literal(Literal::Int(i)) => Some(V::Int(*i)),
            ScalarExprKind::Literal(Literal::Float(f)) => Some(V::Float(*f)),
            ScalarExprKind::Literal(Literal::Duration(d)) => Some(V::Dur(*d)),
            ScalarExprKind::Neg(x) => match go(x)? {
                V::Int(i) => Some(V::Int(-i)),
                V::Dur(d) => Some(V::Dur(-d)),
                V::Float(f) => Some(V::Float(-f)),
                _ => None,
            },
            ScalarExprKind::Binary { op, lhs, rhs } => {
                let op = match op {
                    ArithmeticOp::Add => BinaryOp::Add,
                    ArithmeticOp::Sub => BinaryOp::Sub,
                    ArithmeticOp::Mul => BinaryOp::Mul,
                    ArithmeticOp::Div => BinaryOp::Div,
                    ArithmeticOp::Mod => BinaryOp::Mod,
                    ArithmeticOp::Pow => BinaryOp::Pow,
                };
                arith(op, &go(lhs)?, &go(rhs)?)
            }
            _ => None,
        }
    }
    num(&go(e)?)
}

/// `spans` as traces, with their ids.
fn traces(spans: &[Span]) -> impl Iterator<Item = ([u8; 16], Trace<'_>)> {
    let mut by_trace: HashMap<[u8; 16], Vec<&Span>> = HashMap::new();
    for s in spans {
        by_trace.entry(s.trace_id).or_default().push(s);
    }
    by_trace
        .into_iter()
        .map(|(id, spans)| (id, Trace::new(spans)))
}

/// The reference's answer for every trace of `spans`: per trace id (hex without
/// leading zeros) the spansets as sorted span id lists, sorted.
pub fn search(spans: &[Span], query: &Query) -> Result<HashMap<String, Vec<Vec<String>>>, Skip> {
    let mut out = HashMap::new();
    for (id, trace) in traces(spans) {
        let sets = trace.search(query)?;
        let mut sets: Vec<Vec<String>> = sets
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                let mut ids: Vec<String> =
                    s.iter().map(|&i| hex(&trace.spans[i].span_id)).collect();
                ids.sort();
                ids
            })
            .collect();
        if !sets.is_empty() {
            sets.sort();
            out.insert(hex(&id).trim_start_matches('0').to_string(), sets);
        }
    }
    Ok(out)
}

/// The spans a search `query` selects (those in any of its spansets), all traces
/// together: what a metrics function aggregates.
pub fn selected<'a>(spans: &'a [Span], query: &Query) -> Result<Vec<&'a Span>, Skip> {
    let mut out = Vec::new();
    for (_, trace) in traces(spans) {
        let mut chosen: Vec<usize> = trace.search(query)?.into_iter().flatten().collect();
        chosen.sort_unstable();
        chosen.dedup();
        out.extend(chosen.into_iter().map(|i| trace.spans[i]));
    }
    Ok(out)
}

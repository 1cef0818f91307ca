//! Field expressions compiled against the span table: each attribute or intrinsic
//! becomes a set of input columns, and the expression is evaluated per span with
//! TraceQL's semantics (see [`super::value`]).
//!
//! An attribute may have several values for one span: a typed column and entries of
//! the fallback list with the same key (OTLP allows repeated keys). A comparison holds
//! if it holds for any of them. Unscoped `.x` reads the span's values if it has any,
//! else the resource's, else the instrumentation scope's (as Tempo does: a span
//! attribute shadows a resource attribute of the same key). An attribute whose only
//! values are ones TraceQL cannot query (bytes, key-value lists, empty or mixed arrays)
//! is neither `= nil` nor `!= nil`, as in Tempo. Expressions over `event.`/`link.` fields are evaluated once per
//! event (link) and hold for the span if they hold for any; a span with no events
//! does not satisfy `event.x = nil`.

use crate::error::PlanError;
use std::borrow::Cow;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::error::{DataFusionError, Result};
use regex::Regex;
use smallvec::SmallVec;
use traceql_parser::ast::{
    Attribute, AttributeScope, BinaryOp, Field, FieldExpr, FieldExprKind, Intrinsic, Literal,
    UnaryOp,
};
use traceql_parser::compile_regex;

use super::columns::{Col, ColKind, Entries, format_error, normalize, typed_array};
use super::value::{self, Val};
use traceql_format::codes::{kind, status};
use traceql_format::facts::Facts;
use traceql_format::ids::{hex, trace_id_hex};
use traceql_format::schema::{columns as c, fallback_attribute_column};

/// The candidate values of an expression for one span; empty means nil.
pub type Vals<'a> = SmallVec<[Val<'a>; 2]>;

/// A compiled field expression.
#[derive(Debug)]
pub struct Program {
    root: Node,
    columns: Vec<(String, ColKind)>,
    /// What the compiler learnt from the table's facts: the typed columns and the
    /// fallback keys it reads (see [`Program::facts_used`]).
    used: Facts,
    events: Option<usize>,
    links: Option<usize>,
    start: Option<usize>,
}

#[derive(Debug)]
enum Node {
    Lit(Val<'static>),
    /// An attribute: the sources of each level it is looked up at, in order; the
    /// first level with a value gives the values.
    Attr(Vec<Vec<Source>>),
    Element {
        list: usize,
        key: String,
    },
    Intrinsic(IntrinsicSource),
    Neg(Box<Node>),
    Not(Box<Node>),
    Arith(BinaryOp, Box<Node>, Box<Node>),
    Cmp(BinaryOp, Box<Node>, Box<Node>),
    Regex {
        expr: Box<Node>,
        re: Regex,
        negate: bool,
    },
    Exists {
        expr: Box<Node>,
        negate: bool,
        scoped: Scoped,
    },
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
}

/// Which per-element scopes an expression reads.
#[derive(Clone, Copy, Debug, Default)]
struct Scoped {
    events: bool,
    links: bool,
}

#[derive(Debug)]
enum Source {
    Typed { col: usize },
    Fallback { col: usize, key: String },
}

#[derive(Debug)]
enum IntrinsicSource {
    Str(usize),
    Status(usize),
    Kind(usize),
    Duration(usize),
    Int(usize),
    SpanId(usize),
    ParentId(usize),
    TraceId(usize),
    EventName(usize),
    EventTimeSinceStart,
    LinkTraceId(usize),
    LinkSpanId(usize),
}

struct Compiler<'s> {
    schema: &'s Schema,
    facts: &'s Facts,
    columns: Vec<(String, ColKind)>,
    used: Facts,
}

impl Compiler<'_> {
    fn column(&mut self, name: &str, kind: ColKind) -> Result<usize> {
        if self.schema.index_of(name).is_err() {
            return Err(PlanError::data(format!(
                "the span table has no column `{name}`"
            )));
        }
        if let Some(i) = self.columns.iter().position(|(n, _)| n == name) {
            return Ok(i);
        }
        self.columns.push((name.to_string(), kind));
        Ok(self.columns.len() - 1)
    }

    fn attribute_sources(&mut self, scope: AttributeScope, key: &str) -> Result<Vec<Source>> {
        let mut sources = Vec::new();
        let facts = self.facts;
        for typed in facts.typed_columns(scope, key) {
            let field = self.schema.field_with_name(&typed.column)?;
            let kind = match field.data_type() {
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => ColKind::Str,
                DataType::Dictionary(..) => ColKind::Str,
                DataType::Int64 => ColKind::I64,
                DataType::Float64 => ColKind::F64,
                DataType::Boolean => ColKind::Bool,
                DataType::List(_) => ColKind::List,
                other => {
                    return Err(PlanError::data(format!(
                        "typed attribute column `{}` has unexpected type {other}",
                        typed.column
                    )));
                }
            };
            let col = self.column(&typed.column.clone(), kind)?;
            if !self.used.typed.contains(typed) {
                self.used.typed.push(typed.clone());
            }
            sources.push(Source::Typed { col });
        }
        if let Some(fallback) = fallback_attribute_column(scope)
            && self.schema.index_of(fallback).is_ok()
            && self.facts.may_be_in_fallback(scope, key)
        {
            let col = self.column(fallback, ColKind::Entries)?;
            self.used
                .fallback
                .get_or_insert_default()
                .insert((scope, key.to_string()));
            sources.push(Source::Fallback {
                col,
                key: key.to_string(),
            });
        }
        Ok(sources)
    }

    fn attribute(&mut self, attr: &Attribute) -> Result<Node> {
        if attr.parent {
            return Err(unchecked("the `parent.` scope"));
        }
        let key = attr.name.as_str();
        Ok(match attr.scope {
            AttributeScope::Unscoped => Node::Attr(vec![
                self.attribute_sources(AttributeScope::Span, key)?,
                self.attribute_sources(AttributeScope::Resource, key)?,
                self.attribute_sources(AttributeScope::Instrumentation, key)?,
            ]),
            AttributeScope::Span | AttributeScope::Resource | AttributeScope::Instrumentation => {
                Node::Attr(vec![self.attribute_sources(attr.scope, key)?])
            }
            AttributeScope::Event => Node::Element {
                list: self.column(c::EVENTS, ColKind::Elements)?,
                key: key.to_string(),
            },
            AttributeScope::Link => Node::Element {
                list: self.column(c::LINKS, ColKind::Elements)?,
                key: key.to_string(),
            },
        })
    }

    fn intrinsic(&mut self, intrinsic: Intrinsic) -> Result<Node> {
        use IntrinsicSource as S;
        let source = match intrinsic {
            Intrinsic::Name => S::Str(self.column(c::NAME, ColKind::Str)?),
            Intrinsic::Duration => S::Duration(self.column(c::DURATION_NANO, ColKind::U64)?),
            Intrinsic::Status => S::Status(self.column(c::STATUS_CODE, ColKind::I8)?),
            Intrinsic::StatusMessage => S::Str(self.column(c::STATUS_MESSAGE, ColKind::Str)?),
            Intrinsic::Kind => S::Kind(self.column(c::KIND, ColKind::I8)?),
            Intrinsic::SpanId => S::SpanId(self.column(c::SPAN_ID, ColKind::Id)?),
            Intrinsic::ParentId => S::ParentId(self.column(c::PARENT_SPAN_ID, ColKind::Id)?),
            Intrinsic::TraceId => S::TraceId(self.column(c::TRACE_ID, ColKind::Id)?),
            Intrinsic::TraceDuration => {
                S::Duration(self.column(c::TRACE_DURATION_NANO, ColKind::U64)?)
            }
            Intrinsic::RootName => S::Str(self.column(c::TRACE_ROOT_NAME, ColKind::Str)?),
            Intrinsic::RootService => S::Str(self.column(c::TRACE_ROOT_SERVICE, ColKind::Str)?),
            Intrinsic::EventName => S::EventName(self.column(c::EVENTS, ColKind::Elements)?),
            Intrinsic::EventTimeSinceStart => {
                self.column(c::EVENTS, ColKind::Elements)?;
                self.column(c::START_UNIX_NANO, ColKind::U64)?;
                S::EventTimeSinceStart
            }
            Intrinsic::LinkTraceId => S::LinkTraceId(self.column(c::LINKS, ColKind::Elements)?),
            Intrinsic::LinkSpanId => S::LinkSpanId(self.column(c::LINKS, ColKind::Elements)?),
            Intrinsic::InstrumentationName => {
                S::Str(self.column(c::INSTRUMENTATION_NAME, ColKind::Str)?)
            }
            Intrinsic::InstrumentationVersion => {
                S::Str(self.column(c::INSTRUMENTATION_VERSION, ColKind::Str)?)
            }
            Intrinsic::NestedSetLeft => S::Int(self.column(c::NESTED_SET_LEFT, ColKind::I32)?),
            Intrinsic::NestedSetRight => S::Int(self.column(c::NESTED_SET_RIGHT, ColKind::I32)?),
            Intrinsic::NestedSetParent => S::Int(self.column(c::NESTED_SET_PARENT, ColKind::I32)?),
            Intrinsic::ChildCount => {
                if self.facts.missing_child_counts {
                    return Err(PlanError::unsupported(
                        "`span:childCount` over blocks written before block format 2 is not \
                         supported yet (ingest or convert their traces again to add child counts)",
                    ));
                }
                S::Int(self.column(c::CHILD_COUNT, ColKind::I32)?)
            }
            Intrinsic::Parent => return Err(unchecked("the `parent` intrinsic")),
        };
        Ok(Node::Intrinsic(source))
    }

    fn expr(&mut self, expr: &FieldExpr) -> Result<Node> {
        Ok(match &expr.kind {
            FieldExprKind::Literal(lit) => Node::Lit(literal(lit)?),
            FieldExprKind::Field(Field::Attribute(a)) => self.attribute(a)?,
            FieldExprKind::Field(Field::Intrinsic(i)) => self.intrinsic(*i)?,
            FieldExprKind::Unary {
                op: UnaryOp::Neg,
                expr,
            } => Node::Neg(Box::new(self.expr(expr)?)),
            FieldExprKind::Unary {
                op: UnaryOp::Not,
                expr,
            } => Node::Not(Box::new(self.expr(expr)?)),
            FieldExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs)?,
        })
    }

    fn binary(&mut self, op: BinaryOp, lhs: &FieldExpr, rhs: &FieldExpr) -> Result<Node> {
        let is_nil = |e: &FieldExpr| matches!(e.kind, FieldExprKind::Literal(Literal::Nil));
        if matches!(op, BinaryOp::Eq | BinaryOp::Neq) && (is_nil(lhs) || is_nil(rhs)) {
            let other = if is_nil(lhs) { rhs } else { lhs };
            if is_nil(other) {
                return Ok(Node::Lit(Val::Bool(false)));
            }
            return Ok(Node::Exists {
                expr: Box::new(self.expr(other)?),
                negate: op == BinaryOp::Eq,
                scoped: Scoped::default(),
            });
        }
        if matches!(op, BinaryOp::Regex | BinaryOp::NotRegex) {
            let FieldExprKind::Literal(Literal::String(pattern)) = &rhs.kind else {
                return Err(PlanError::query(format!(
                    "the right side of `{}` must be a string literal",
                    op.as_str()
                )));
            };
            let re = compile_regex(pattern)
                .map_err(|e| PlanError::query(format!("invalid regular expression: {e}")))?;
            return Ok(Node::Regex {
                expr: Box::new(self.expr(lhs)?),
                re,
                negate: op == BinaryOp::NotRegex,
            });
        }
        let (mut l, mut r) = (self.expr(lhs)?, self.expr(rhs)?);
        normalize_id_literal(&l, &mut r);
        normalize_id_literal(&r, &mut l);
        let (l, r) = (Box::new(l), Box::new(r));
        Ok(match op {
            BinaryOp::And => Node::And(l, r),
            BinaryOp::Or => Node::Or(l, r),
            op if op.is_arithmetic() => Node::Arith(op, l, r),
            op => Node::Cmp(op, l, r),
        })
    }
}

/// Ids are compared in Tempo's printed form: trace ids without leading zeros, span
/// ids as 16 hex digits. A string literal compared with an id is brought to that form.
fn normalize_id_literal(id: &Node, other: &mut Node) {
    let Node::Lit(Val::Str(s)) = other else {
        return;
    };
    let trimmed = s.trim_start_matches('0');
    let normal = match id {
        Node::Intrinsic(IntrinsicSource::TraceId(_) | IntrinsicSource::LinkTraceId(_)) => {
            trimmed.to_string()
        }
        Node::Intrinsic(
            IntrinsicSource::SpanId(_)
            | IntrinsicSource::ParentId(_)
            | IntrinsicSource::LinkSpanId(_),
        ) => format!("{trimmed:0>16}"),
        _ => return,
    };
    *s = Cow::Owned(normal);
}

fn intrinsic_scope(source: &IntrinsicSource) -> Scoped {
    Scoped {
        events: matches!(
            source,
            IntrinsicSource::EventName(_) | IntrinsicSource::EventTimeSinceStart
        ),
        links: matches!(
            source,
            IntrinsicSource::LinkTraceId(_) | IntrinsicSource::LinkSpanId(_)
        ),
    }
}

/// A construct `traceql_parser::check_supported` refuses reached the planner: the
/// query was not checked.
fn unchecked(what: &str) -> DataFusionError {
    PlanError::internal(format!(
        "{what} reached the planner: check queries with traceql_parser::check_supported first"
    ))
}

fn literal(lit: &Literal) -> Result<Val<'static>> {
    Ok(match lit {
        Literal::Int(i) => Val::Int(*i),
        Literal::Float(f) => Val::Float(*f),
        Literal::Duration(d) => Val::Dur(*d),
        Literal::String(s) => Val::Str(Cow::Owned(s.clone())),
        Literal::Bool(b) => Val::Bool(*b),
        Literal::Status(s) => Val::Status(status::code(*s)),
        Literal::Kind(k) => Val::Kind(kind::code(*k)),
        Literal::Nil => {
            return Err(PlanError::query("`nil` outside `= nil` / `!= nil`"));
        }
    })
}

/// Per-batch views of a program's input columns.
pub struct Bound<'a> {
    program: &'a Program,
    cols: Vec<Col<'a>>,
}

#[derive(Clone, Copy)]
struct At {
    row: usize,
    event: Option<usize>,
    link: Option<usize>,
}

impl Program {
    /// Compiles `expr` against a span table with `schema` described by `facts`.
    /// Constructs `traceql_parser::check_supported` refuses give an internal error.
    pub fn compile(expr: Option<&FieldExpr>, schema: &Schema, facts: &Facts) -> Result<Program> {
        let mut compiler = Compiler {
            schema,
            facts,
            columns: Vec::new(),
            used: Facts {
                fallback: Some(Default::default()),
                ..Facts::default()
            },
        };
        let root = match expr {
            Some(e) => compiler.expr(e)?,
            None => Node::Lit(Val::Bool(true)),
        };
        let find = |name: &str| compiler.columns.iter().position(|(n, _)| n == name);
        let (events, links) = (find(c::EVENTS), find(c::LINKS));
        let start = find(c::START_UNIX_NANO);
        let mut program = Program {
            root,
            columns: compiler.columns,
            used: compiler.used,
            events,
            links,
            start,
        };
        program.mark_element_scopes();
        Ok(program)
    }

    fn mark_element_scopes(&mut self) {
        let (events, links) = (self.events, self.links);
        fn walk(node: &mut Node, events: Option<usize>, links: Option<usize>) -> Scoped {
            let mut s = Scoped::default();
            let mut add = |t: Scoped| {
                s.events |= t.events;
                s.links |= t.links;
            };
            match node {
                Node::Element { list, .. } => add(Scoped {
                    events: Some(*list) == events,
                    links: Some(*list) == links,
                }),
                Node::Intrinsic(source) => add(intrinsic_scope(source)),
                Node::Neg(e) | Node::Not(e) | Node::Regex { expr: e, .. } => {
                    add(walk(e, events, links))
                }
                Node::Exists {
                    expr, scoped: sc, ..
                } => {
                    let inner = walk(expr, events, links);
                    *sc = inner;
                    add(inner)
                }
                Node::Arith(_, a, b) | Node::Cmp(_, a, b) | Node::And(a, b) | Node::Or(a, b) => {
                    add(walk(a, events, links));
                    add(walk(b, events, links));
                }
                Node::Lit(_) | Node::Attr(_) => {}
            }
            s
        }
        walk(&mut self.root, events, links);
    }

    /// The input columns, in argument order, with how each is read.
    pub fn columns(&self) -> &[(String, ColKind)] {
        &self.columns
    }

    /// The facts the program was compiled with, cut down to what it read of them: the
    /// typed columns of its attributes and the fallback keys it looks up. Compiled
    /// again over its [`Self::columns`] with these facts, an expression gives the same
    /// program (how a plan shipped to another machine rebuilds it).
    pub fn facts_used(&self) -> &Facts {
        &self.used
    }

    /// Whether the expression is the constant `true` (`{ }`).
    pub fn is_always_true(&self) -> bool {
        matches!(self.root, Node::Lit(Val::Bool(true)))
    }

    /// Views `arrays` (the input columns, in [`Self::columns`] order) for evaluation.
    pub fn bind<'a>(&'a self, arrays: &'a [ArrayRef]) -> Result<Bound<'a>> {
        let cols = self
            .columns
            .iter()
            .zip(arrays)
            .map(|((_, kind), array)| Col::new(*kind, array.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Bound {
            program: self,
            cols,
        })
    }

    /// Brings input arrays to the physical types [`Self::bind`] expects.
    pub fn normalize(arrays: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
        arrays.iter().map(normalize).collect()
    }
}

impl<'a> Bound<'a> {
    fn element_ranges(&self, row: usize) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
        let range = |list: Option<usize>| -> Vec<Option<usize>> {
            match list.map(|i| &self.cols[i]) {
                Some(Col::Elements(e)) => {
                    let r = e.range(row);
                    if r.is_empty() {
                        vec![None]
                    } else {
                        r.map(Some).collect()
                    }
                }
                _ => vec![None],
            }
        };
        (range(self.program.events), range(self.program.links))
    }

    /// Whether the expression is `true` for the span at `row`.
    pub fn matches(&self, row: usize) -> Result<bool> {
        if self.program.events.is_none() && self.program.links.is_none() {
            return self.truth(
                &self.program.root,
                At {
                    row,
                    event: None,
                    link: None,
                },
            );
        }
        let (events, links) = self.element_ranges(row);
        for &event in &events {
            for &link in &links {
                if self.truth(&self.program.root, At { row, event, link })? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The values of the expression for the span at `row` (for `by`, `select` and
    /// aggregates): those of the first event/link that has any, strings first, then
    /// integers, floats, booleans, other scalars and arrays; values of one type keep
    /// their order (span before resource before instrumentation, then as stored).
    pub fn values(&self, row: usize) -> Result<Vals<'a>> {
        let (events, links) = self.element_ranges(row);
        for &event in &events {
            for &link in &links {
                let mut out = Vals::new();
                self.eval(&self.program.root, At { row, event, link }, &mut out)?;
                if !out.is_empty() {
                    out.sort_by_key(Val::type_rank);
                    return Ok(out);
                }
            }
        }
        Ok(Vals::new())
    }

    fn truth(&self, node: &'a Node, at: At) -> Result<bool> {
        let mut out = Vals::new();
        self.eval(node, at, &mut out)?;
        Ok(matches!(out.first(), Some(Val::Bool(true))))
    }

    fn boolean(&self, node: &'a Node, at: At) -> Result<Option<bool>> {
        let mut out = Vals::new();
        self.eval(node, at, &mut out)?;
        Ok(match out.first() {
            Some(Val::Bool(b)) => Some(*b),
            _ => None,
        })
    }

    fn eval(&self, node: &'a Node, at: At, out: &mut Vals<'a>) -> Result<()> {
        match node {
            Node::Lit(v) => out.push(borrow(v)),
            Node::Attr(levels) => {
                for sources in levels {
                    let before = out.len();
                    for source in sources {
                        self.lookup(source, at.row, out);
                    }
                    if out.len() > before {
                        break;
                    }
                }
            }
            Node::Element { list, key } => {
                let element = if Some(*list) == self.program.events {
                    at.event
                } else {
                    at.link
                };
                if let (Some(i), Col::Elements(e)) = (element, &self.cols[*list]) {
                    let mut found = Vec::new();
                    let attributes = Entries::from(e.attributes);
                    attributes.lookup(attributes.range(i), key, &mut found);
                    out.extend(found);
                }
            }
            Node::Intrinsic(source) => {
                if let Some(v) = self.intrinsic(source, at)? {
                    out.push(v);
                }
            }
            Node::Neg(e) => {
                let mut inner = Vals::new();
                self.eval(e, at, &mut inner)?;
                for v in &inner {
                    if let Some(n) = value::negate(v)? {
                        out.push(n);
                    }
                }
            }
            Node::Not(e) => {
                if let Some(b) = self.boolean(e, at)? {
                    out.push(Val::Bool(!b));
                } else {
                    out.push(Val::Bool(false));
                }
            }
            Node::Arith(op, a, b) => {
                let (mut l, mut r) = (Vals::new(), Vals::new());
                self.eval(a, at, &mut l)?;
                self.eval(b, at, &mut r)?;
                for x in &l {
                    for y in &r {
                        if let Some(v) = value::arithmetic(*op, x, y)? {
                            out.push(v);
                        }
                    }
                }
            }
            Node::Cmp(op, a, b) => {
                let (mut l, mut r) = (Vals::new(), Vals::new());
                self.eval(a, at, &mut l)?;
                self.eval(b, at, &mut r)?;
                let mut any = false;
                'outer: for x in &l {
                    for y in &r {
                        if value::compare(*op, x, y)? {
                            any = true;
                            break 'outer;
                        }
                    }
                }
                out.push(Val::Bool(any));
            }
            Node::Regex { expr, re, negate } => {
                let mut inner = Vals::new();
                self.eval(expr, at, &mut inner)?;
                out.push(Val::Bool(
                    inner.iter().any(|v| value::regex_match(re, v, *negate)),
                ));
            }
            Node::Exists {
                expr,
                negate,
                scoped,
            } => {
                let missing_element =
                    (scoped.events && at.event.is_none()) || (scoped.links && at.link.is_none());
                if missing_element {
                    out.push(Val::Bool(false));
                } else {
                    let mut inner = Vals::new();
                    self.eval(expr, at, &mut inner)?;
                    let result = if *negate {
                        inner.is_empty() && !self.unqueryable(expr, at)
                    } else {
                        !inner.is_empty()
                    };
                    out.push(Val::Bool(result));
                }
            }
            Node::And(a, b) => {
                let l = self.boolean(a, at)?;
                let result = if l == Some(false) {
                    false
                } else {
                    let r = self.boolean(b, at)?;
                    l == Some(true) && r == Some(true)
                };
                out.push(Val::Bool(result));
            }
            Node::Or(a, b) => {
                let l = self.boolean(a, at)?;
                let result = l == Some(true) || self.boolean(b, at)? == Some(true);
                out.push(Val::Bool(result));
            }
        }
        Ok(())
    }

    fn lookup(&self, source: &Source, row: usize, out: &mut Vals<'a>) {
        match source {
            Source::Typed { col, .. } => {
                let v = match &self.cols[*col] {
                    Col::Str(a) => a.get(row).map(|s| Val::Str(Cow::Borrowed(s))),
                    Col::I64(a) => a.is_valid(row).then(|| Val::Int(a.value(row))),
                    Col::F64(a) => a.is_valid(row).then(|| Val::Float(a.value(row))),
                    Col::Bool(a) => a.is_valid(row).then(|| Val::Bool(a.value(row))),
                    Col::List(a) => typed_array(a, row),
                    _ => None,
                };
                out.extend(v);
            }
            Source::Fallback { col, key } => {
                if let Col::Entries(e) = &self.cols[*col] {
                    let mut found = Vec::new();
                    e.lookup(e.range(row), key, &mut found);
                    out.extend(found);
                }
            }
        }
    }

    /// Whether `node` is an attribute present at `at` with only values TraceQL cannot
    /// query (which makes it neither `= nil` nor `!= nil`).
    fn unqueryable(&self, node: &Node, at: At) -> bool {
        let opaque_in = |col: usize, element: Option<usize>, key: &str| match &self.cols[col] {
            Col::Entries(e) => e.has_unqueryable(e.range(at.row), key),
            Col::Elements(e) => element.is_some_and(|i| {
                let attributes = Entries::from(e.attributes);
                attributes.has_unqueryable(attributes.range(i), key)
            }),
            _ => false,
        };
        match node {
            Node::Attr(levels) => levels.iter().flatten().any(|source| match source {
                Source::Fallback { col, key } => opaque_in(*col, None, key),
                Source::Typed { .. } => false,
            }),
            Node::Element { list, key } => {
                let element = if Some(*list) == self.program.events {
                    at.event
                } else {
                    at.link
                };
                opaque_in(*list, element, key)
            }
            _ => false,
        }
    }

    fn intrinsic(&self, source: &IntrinsicSource, at: At) -> Result<Option<Val<'a>>> {
        use IntrinsicSource as S;
        let row = at.row;
        Ok(match source {
            S::Str(i) => match &self.cols[*i] {
                Col::Str(a) => a.get(row).map(|s| Val::Str(Cow::Borrowed(s))),
                _ => None,
            },
            S::Status(i) | S::Kind(i) => match &self.cols[*i] {
                Col::I8(a) if a.is_valid(row) => Some(if matches!(source, S::Status(_)) {
                    Val::Status(a.value(row))
                } else {
                    Val::Kind(a.value(row))
                }),
                _ => None,
            },
            S::Duration(i) => match &self.cols[*i] {
                Col::U64(a) if a.is_valid(row) => Some(Val::Dur(a.value(row) as i64)),
                _ => None,
            },
            S::Int(i) => match &self.cols[*i] {
                Col::I32(a) if a.is_valid(row) => Some(Val::Int(a.value(row) as i64)),
                _ => None,
            },
            S::SpanId(i) => match &self.cols[*i] {
                Col::Id(a) if a.is_valid(row) => Some(Val::Str(Cow::Owned(hex(a.value(row))))),
                _ => None,
            },
            S::ParentId(i) => match &self.cols[*i] {
                Col::Id(a) if a.is_valid(row) => Some(Val::Str(Cow::Owned(hex(a.value(row))))),
                Col::Id(_) => Some(Val::Str(Cow::Borrowed("0000000000000000"))),
                _ => None,
            },
            S::TraceId(i) => match &self.cols[*i] {
                Col::Id(a) if a.is_valid(row) => {
                    Some(Val::Str(Cow::Owned(trace_id_hex(a.value(row)))))
                }
                _ => None,
            },
            S::EventName(i) => self.element_str(*i, at.event, "name")?,
            S::EventTimeSinceStart => {
                let (Some(list), Some(start), Some(event)) =
                    (self.program.events, self.program.start, at.event)
                else {
                    return Ok(None);
                };
                let (Col::Elements(e), Col::U64(starts)) = (&self.cols[list], &self.cols[start])
                else {
                    return Ok(None);
                };
                let times = e
                    .field::<datafusion::arrow::array::UInt64Array>("time_unix_nano")
                    .map_err(format_error)?;
                Some(Val::Dur(
                    times.value(event) as i64 - starts.value(row) as i64,
                ))
            }
            S::LinkTraceId(i) => self.element_id(*i, at.link, "trace_id", true)?,
            S::LinkSpanId(i) => self.element_id(*i, at.link, "span_id", false)?,
        })
    }

    fn element_str(
        &self,
        list: usize,
        element: Option<usize>,
        field: &str,
    ) -> Result<Option<Val<'a>>> {
        let (Some(i), Col::Elements(e)) = (element, &self.cols[list]) else {
            return Ok(None);
        };
        let array = e.column(field).map_err(format_error)?;
        let values = Col::new(ColKind::Str, array.as_ref())?;
        Ok(match values {
            Col::Str(s) => s.get(i).map(|s| Val::Str(Cow::Borrowed(s))),
            _ => None,
        })
    }

    fn element_id(
        &self,
        list: usize,
        element: Option<usize>,
        field: &str,
        trace: bool,
    ) -> Result<Option<Val<'a>>> {
        let (Some(i), Col::Elements(e)) = (element, &self.cols[list]) else {
            return Ok(None);
        };
        let Col::Id(ids) = Col::new(ColKind::Id, e.column(field).map_err(format_error)?.as_ref())?
        else {
            return Ok(None);
        };
        let bytes = ids.value(i);
        Ok(Some(Val::Str(Cow::Owned(if trace {
            trace_id_hex(bytes)
        } else {
            hex(bytes)
        }))))
    }
}

fn borrow<'a>(v: &'a Val<'static>) -> Val<'a> {
    match v {
        Val::Str(s) => Val::Str(Cow::Borrowed(s)),
        other => other.clone(),
    }
}

//! Field expressions: what goes inside `{ … }`, aggregates and `by(…)`.

use serde::Serialize;

use crate::Span;

/// An expression evaluated per span: literals, attributes, intrinsics and operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldExpr {
    /// What the expression is.
    pub kind: FieldExprKind,
    /// Where it is.
    pub span: Span,
}

/// The forms of a [`FieldExpr`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldExprKind {
    /// A constant.
    Literal(Literal),
    /// An attribute or intrinsic.
    Field(Field),
    /// `-x` or `!x`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<FieldExpr>,
    },
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<FieldExpr>,
        /// Right operand.
        rhs: Box<FieldExpr>,
    },
}

/// A constant value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Literal {
    /// A 64-bit signed integer (`42`, `minInt`).
    Int(i64),
    /// A 64-bit float (`1.5`, `.5`, `1e3`).
    Float(f64),
    /// A duration in nanoseconds (`100ms`, `1h30m`).
    Duration(i64),
    /// A string (`"GET"` or `` `raw` ``).
    String(String),
    /// `true` or `false`.
    Bool(bool),
    /// `nil`: only as an operand of `=` and `!=` (existence tests).
    Nil,
    /// `ok`, `error` or `unset`.
    Status(Status),
    /// `server`, `client`, … .
    Kind(SpanKind),
}

/// A span status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// OTLP status code 0.
    Unset,
    /// OTLP status code 1.
    Ok,
    /// OTLP status code 2.
    Error,
}

impl Status {
    /// Every status, in order of OTLP code.
    pub const ALL: [Status; 3] = [Status::Unset, Status::Ok, Status::Error];

    /// The TraceQL keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

impl SpanKind {
    /// Every kind, in order of OTLP code.
    pub const ALL: [SpanKind; 6] = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    /// The TraceQL keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// A span kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// OTLP kind 0.
    Unspecified,
    /// OTLP kind 1.
    Internal,
    /// OTLP kind 2.
    Server,
    /// OTLP kind 3.
    Client,
    /// OTLP kind 4.
    Producer,
    /// OTLP kind 5.
    Consumer,
}

/// An attribute or an intrinsic.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// A user attribute such as `span.http.method`.
    Attribute(Attribute),
    /// A built-in property such as `duration` or `trace:id`.
    Intrinsic(Intrinsic),
}

/// An attribute or intrinsic with its position, where only those are allowed
/// (`select(…)`, metrics `by (…)` and metrics function arguments).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FieldRef {
    /// The attribute or intrinsic.
    pub field: Field,
    /// Where it is.
    pub span: Span,
}

/// A user attribute reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Attribute {
    /// Where to look the attribute up.
    pub scope: AttributeScope,
    /// `parent.` was written: the attribute of the parent span (not supported yet).
    pub parent: bool,
    /// The attribute key, unquoted (`http.status_code`, `name with space`).
    pub name: String,
}

/// The scope of an attribute reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeScope {
    /// `.name`: span, then resource.
    Unscoped,
    /// `span.name`.
    Span,
    /// `resource.name`.
    Resource,
    /// `event.name`: attributes of the span's events.
    Event,
    /// `link.name`: attributes of the span's links.
    Link,
    /// `instrumentation.name`: attributes of the instrumentation scope.
    Instrumentation,
}

impl AttributeScope {
    /// The scopes written before a `.`, with their words.
    pub const PREFIXES: [(&'static str, AttributeScope); 5] = [
        ("span", AttributeScope::Span),
        ("resource", AttributeScope::Resource),
        ("event", AttributeScope::Event),
        ("link", AttributeScope::Link),
        ("instrumentation", AttributeScope::Instrumentation),
    ];
}

/// Built-in span, trace, event, link and instrumentation properties.
///
/// Scoped and legacy spellings (`span:duration` and `duration`) are the same intrinsic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intrinsic {
    /// `span:name`, `name`.
    Name,
    /// `span:duration`, `duration`.
    Duration,
    /// `span:status`, `status`.
    Status,
    /// `span:statusMessage`, `statusMessage`.
    StatusMessage,
    /// `span:kind`, `kind`.
    Kind,
    /// `span:id`.
    SpanId,
    /// `span:parentID`.
    ParentId,
    /// `span:childCount`.
    ChildCount,
    /// `trace:id`.
    TraceId,
    /// `trace:duration`, `traceDuration`.
    TraceDuration,
    /// `trace:rootName`, `rootName`.
    RootName,
    /// `trace:rootService`, `rootServiceName`.
    RootService,
    /// `event:name`.
    EventName,
    /// `event:timeSinceStart`.
    EventTimeSinceStart,
    /// `link:traceID`.
    LinkTraceId,
    /// `link:spanID`.
    LinkSpanId,
    /// `instrumentation:name`.
    InstrumentationName,
    /// `instrumentation:version`.
    InstrumentationVersion,
    /// `nestedSetLeft` (undocumented in Tempo).
    NestedSetLeft,
    /// `nestedSetRight` (undocumented in Tempo).
    NestedSetRight,
    /// `nestedSetParent` (undocumented in Tempo).
    NestedSetParent,
    /// `parent`: the parent span (not supported yet).
    Parent,
}

/// The scopes that `scope:name` intrinsics are written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntrinsicScope {
    /// `span:`.
    Span,
    /// `trace:`.
    Trace,
    /// `event:`.
    Event,
    /// `link:`.
    Link,
    /// `instrumentation:`.
    Instrumentation,
}

impl IntrinsicScope {
    /// Every intrinsic scope.
    pub const ALL: [IntrinsicScope; 5] = [
        IntrinsicScope::Span,
        IntrinsicScope::Trace,
        IntrinsicScope::Event,
        IntrinsicScope::Link,
        IntrinsicScope::Instrumentation,
    ];

    /// The scope word, without the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            IntrinsicScope::Span => "span",
            IntrinsicScope::Trace => "trace",
            IntrinsicScope::Event => "event",
            IntrinsicScope::Link => "link",
            IntrinsicScope::Instrumentation => "instrumentation",
        }
    }

    /// The intrinsics this scope offers, with their names after the colon.
    pub fn intrinsics(self) -> &'static [(&'static str, Intrinsic)] {
        use Intrinsic::*;
        match self {
            IntrinsicScope::Span => &[
                ("name", Name),
                ("duration", Duration),
                ("status", Status),
                ("statusMessage", StatusMessage),
                ("kind", Kind),
                ("id", SpanId),
                ("parentID", ParentId),
                ("childCount", ChildCount),
            ],
            IntrinsicScope::Trace => &[
                ("id", TraceId),
                ("duration", TraceDuration),
                ("rootName", RootName),
                ("rootService", RootService),
            ],
            IntrinsicScope::Event => {
                &[("name", EventName), ("timeSinceStart", EventTimeSinceStart)]
            }
            IntrinsicScope::Link => &[("traceID", LinkTraceId), ("spanID", LinkSpanId)],
            IntrinsicScope::Instrumentation => &[
                ("name", InstrumentationName),
                ("version", InstrumentationVersion),
            ],
        }
    }
}

impl Intrinsic {
    /// The unscoped (legacy) spellings and what they mean.
    pub const UNSCOPED: &'static [(&'static str, Intrinsic)] = &[
        ("name", Intrinsic::Name),
        ("duration", Intrinsic::Duration),
        ("status", Intrinsic::Status),
        ("statusMessage", Intrinsic::StatusMessage),
        ("kind", Intrinsic::Kind),
        ("rootName", Intrinsic::RootName),
        ("rootServiceName", Intrinsic::RootService),
        ("traceDuration", Intrinsic::TraceDuration),
        ("nestedSetLeft", Intrinsic::NestedSetLeft),
        ("nestedSetRight", Intrinsic::NestedSetRight),
        ("nestedSetParent", Intrinsic::NestedSetParent),
        ("parent", Intrinsic::Parent),
    ];

    /// The intrinsic an unscoped word names, if any.
    pub fn from_unscoped(word: &str) -> Option<Intrinsic> {
        Self::UNSCOPED
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, i)| *i)
    }

    /// The intrinsic `scope:word` names, if any.
    pub fn from_scoped(scope: IntrinsicScope, word: &str) -> Option<Intrinsic> {
        scope
            .intrinsics()
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, i)| *i)
    }

    /// The canonical spelling: the legacy unscoped form where one exists, else `scope:name`.
    pub fn canonical_name(self) -> &'static str {
        use Intrinsic::*;
        match self {
            Name => "name",
            Duration => "duration",
            Status => "status",
            StatusMessage => "statusMessage",
            Kind => "kind",
            SpanId => "span:id",
            ParentId => "span:parentID",
            ChildCount => "span:childCount",
            TraceId => "trace:id",
            TraceDuration => "traceDuration",
            RootName => "rootName",
            RootService => "rootServiceName",
            EventName => "event:name",
            EventTimeSinceStart => "event:timeSinceStart",
            LinkTraceId => "link:traceID",
            LinkSpanId => "link:spanID",
            InstrumentationName => "instrumentation:name",
            InstrumentationVersion => "instrumentation:version",
            NestedSetLeft => "nestedSetLeft",
            NestedSetRight => "nestedSetRight",
            NestedSetParent => "nestedSetParent",
            Parent => "parent",
        }
    }
}

/// Prefix operators of field expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnaryOp {
    /// `-`: numeric negation.
    Neg,
    /// `!`: boolean not.
    Not,
}

/// Infix operators of field expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^` (power, right-associative)
    Pow,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `=~` (fully anchored regex match)
    Regex,
    /// `!~`
    NotRegex,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "^",
            Eq => "=",
            Neq => "!=",
            Lt => "<",
            Lte => "<=",
            Gt => ">",
            Gte => ">=",
            Regex => "=~",
            NotRegex => "!~",
            And => "&&",
            Or => "||",
        }
    }

    /// Binding strength: higher binds tighter. `&&` and `||` share a level, as in Tempo.
    pub fn precedence(self) -> u8 {
        use super::precedence::*;
        use BinaryOp::*;
        match self {
            And | Or => LOGIC,
            Eq | Neq | Lt | Lte | Gt | Gte | Regex | NotRegex => RELATION,
            Add | Sub => ADDITIVE,
            Mul | Div | Mod => MULTIPLICATIVE,
            Pow => POWER,
        }
    }

    /// True for `^`, the only right-associative operator.
    pub fn is_right_assoc(self) -> bool {
        self == BinaryOp::Pow
    }

    /// True for `+ - * / % ^`.
    pub fn is_arithmetic(self) -> bool {
        use BinaryOp::*;
        matches!(self, Add | Sub | Mul | Div | Mod | Pow)
    }

    /// True for `= != < <= > >=`.
    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eq | Neq | Lt | Lte | Gt | Gte)
    }
}

impl UnaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Not => "!",
        }
    }

    /// The level the prefix expression itself sits at (`-` with `+`, `!` just above).
    pub fn precedence(self) -> u8 {
        use super::precedence::*;
        match self {
            UnaryOp::Neg => ADDITIVE,
            UnaryOp::Not => NOT,
        }
    }

    /// The weakest level its operand may have without parentheses:
    /// `-.a * 2` is `-(.a * 2)` and `!.a = .b` is `(!.a) = .b`.
    pub fn operand_precedence(self) -> u8 {
        self.precedence() + 1
    }
}

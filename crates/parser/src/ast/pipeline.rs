//! Search pipelines: spanset expressions, scalar filters, `by`, `select`, `coalesce`.

use serde::{Deserialize, Serialize};

use super::{FieldExpr, FieldRef, Literal};
use crate::Span;

/// Stages separated by `|`; each maps a list of spansets to a list of spansets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pipeline {
    /// At least one stage; the first is never `coalesce()`.
    pub stages: Vec<Stage>,
    /// The whole pipeline.
    pub span: Span,
}

/// One stage of a [`Pipeline`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Filters and combines spansets: `{ … }`, `{ … } >> { … }`, `(pipeline) && { … }`.
    Spanset(SpansetExpr),
    /// Keeps spansets whose aggregate passes: `count() > 2`, `avg(duration) > 1s`.
    ScalarFilter(ScalarFilter),
    /// `by(expr)`: splits each spanset by the value of `expr`.
    GroupBy {
        /// The grouping expression.
        expr: FieldExpr,
        /// The whole stage.
        span: Span,
    },
    /// `select(a, …)`: returns these fields with each span.
    Select {
        /// At least one attribute or intrinsic.
        fields: Vec<FieldRef>,
        /// The whole stage.
        span: Span,
    },
    /// `coalesce()`: merges all spansets of a trace into one.
    Coalesce {
        /// The whole stage.
        span: Span,
    },
}

/// Filters and spanset operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpansetExpr {
    /// What it is.
    pub kind: SpansetExprKind,
    /// Where it is.
    pub span: Span,
}

/// The forms of a [`SpansetExpr`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpansetExprKind {
    /// `{ expr }`, or `{ }` (every span) when `None`. `< expr >` is the same.
    Filter(Option<FieldExpr>),
    /// `lhs op rhs` between spansets.
    Binary {
        /// The operator.
        op: SpansetOp,
        /// Left operand.
        lhs: Box<SpansetExpr>,
        /// Right operand.
        rhs: Box<SpansetExpr>,
    },
    /// A parenthesised pipeline used as an operand: `({ .a } | count() > 1) >> { .b }`.
    Pipeline(Pipeline),
}

/// Operators between spansets: logical and structural.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpansetOp {
    /// `&&`: both sides match in the trace; the union of their spans.
    And,
    /// `||`: either side matches; the union of their spans.
    Or,
    /// `>`: right spans that are children of left spans.
    Child,
    /// `<`: right spans that are parents of left spans.
    Parent,
    /// `>>`: right spans that are descendants of left spans.
    Descendant,
    /// `<<`: right spans that are ancestors of left spans.
    Ancestor,
    /// `~`: right spans that are siblings of left spans.
    Sibling,
    /// `!>`: right spans that are not children of any left span.
    NotChild,
    /// `!<`: right spans that are not parents of any left span.
    NotParent,
    /// `!>>`: right spans that are not descendants of any left span.
    NotDescendant,
    /// `!<<`: right spans that are not ancestors of any left span.
    NotAncestor,
    /// `!~`: right spans that are not siblings of any left span.
    NotSibling,
    /// `&>`: parents and children, both sides.
    UnionChild,
    /// `&<`: children and parents, both sides.
    UnionParent,
    /// `&>>`: ancestors and descendants, both sides.
    UnionDescendant,
    /// `&<<`: descendants and ancestors, both sides.
    UnionAncestor,
    /// `&~`: siblings, both sides.
    UnionSibling,
}

impl SpansetOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        use SpansetOp::*;
        match self {
            And => "&&",
            Or => "||",
            Child => ">",
            Parent => "<",
            Descendant => ">>",
            Ancestor => "<<",
            Sibling => "~",
            NotChild => "!>",
            NotParent => "!<",
            NotDescendant => "!>>",
            NotAncestor => "!<<",
            NotSibling => "!~",
            UnionChild => "&>",
            UnionParent => "&<",
            UnionDescendant => "&>>",
            UnionAncestor => "&<<",
            UnionSibling => "&~",
        }
    }

    /// Binding strength: `&&`/`||` (2) are looser than the structural operators (3).
    pub fn precedence(self) -> u8 {
        use super::precedence::*;
        match self {
            SpansetOp::And | SpansetOp::Or => LOGIC,
            _ => RELATION,
        }
    }

    /// True for the 15 structural operators.
    pub fn is_structural(self) -> bool {
        self.precedence() == super::precedence::RELATION
    }
}

/// `lhs op rhs` over aggregates of a spanset: `count() > 2`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScalarFilter {
    /// The comparison.
    pub op: ComparisonOp,
    /// Left side.
    pub lhs: ScalarExpr,
    /// Right side.
    pub rhs: ScalarExpr,
    /// The whole filter.
    pub span: Span,
}

/// Comparison operators of scalar filters and metrics filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonOp {
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
}

impl ComparisonOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        use ComparisonOp::*;
        match self {
            Eq => "=",
            Neq => "!=",
            Lt => "<",
            Lte => "<=",
            Gt => ">",
            Gte => ">=",
        }
    }
}

/// A numeric expression over aggregates and constants.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScalarExpr {
    /// What it is.
    pub kind: ScalarExprKind,
    /// Where it is.
    pub span: Span,
}

/// The forms of a [`ScalarExpr`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalarExprKind {
    /// `count()`, `avg(duration)`, … over the spans of the spanset.
    Aggregate(Aggregate),
    /// A number or duration.
    Literal(Literal),
    /// `-x`.
    Neg(Box<ScalarExpr>),
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: ArithmeticOp,
        /// Left operand.
        lhs: Box<ScalarExpr>,
        /// Right operand.
        rhs: Box<ScalarExpr>,
    },
    /// `(pipeline | aggregate)`: an aggregate over a whole parenthesised pipeline
    /// (parses, but is not supported yet).
    Pipeline {
        /// The pipeline before the aggregate.
        pipeline: Pipeline,
        /// The aggregate.
        aggregate: Aggregate,
    },
}

/// Aggregate functions over the spans of a spanset.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// `count()`
    Count,
    /// `avg(expr)`
    Avg(FieldExpr),
    /// `min(expr)`
    Min(FieldExpr),
    /// `max(expr)`
    Max(FieldExpr),
    /// `sum(expr)`
    Sum(FieldExpr),
}

impl Aggregate {
    /// The function: `Count`, `Avg`, `Min`, `Max` or `Sum`.
    pub fn function(&self) -> super::Function {
        use super::Function;
        match self {
            Aggregate::Count => Function::Count,
            Aggregate::Avg(_) => Function::Avg,
            Aggregate::Min(_) => Function::Min,
            Aggregate::Max(_) => Function::Max,
            Aggregate::Sum(_) => Function::Sum,
        }
    }

    /// The function name.
    pub fn name(&self) -> &'static str {
        self.function().name()
    }

    /// The argument, if the function takes one.
    pub fn arg(&self) -> Option<&FieldExpr> {
        match self {
            Aggregate::Count => None,
            Aggregate::Avg(e) | Aggregate::Min(e) | Aggregate::Max(e) | Aggregate::Sum(e) => {
                Some(e)
            }
        }
    }
}

/// Arithmetic between scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArithmeticOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%` (scalar filters only)
    Mod,
    /// `^` (scalar filters only; right-associative)
    Pow,
}

impl ArithmeticOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        use ArithmeticOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "^",
        }
    }

    /// Binding strength, on the same scale as [`super::BinaryOp::precedence`].
    pub fn precedence(self) -> u8 {
        use super::precedence::*;
        use ArithmeticOp::*;
        match self {
            Add | Sub => ADDITIVE,
            Mul | Div | Mod => MULTIPLICATIVE,
            Pow => POWER,
        }
    }

    /// True for `^`.
    pub fn is_right_assoc(self) -> bool {
        self == ArithmeticOp::Pow
    }
}

impl ScalarExpr {
    /// True when no aggregate or pipeline occurs in the expression.
    pub fn is_constant(&self) -> bool {
        match &self.kind {
            ScalarExprKind::Literal(_) => true,
            ScalarExprKind::Neg(e) => e.is_constant(),
            ScalarExprKind::Binary { lhs, rhs, .. } => lhs.is_constant() && rhs.is_constant(),
            ScalarExprKind::Aggregate(_) | ScalarExprKind::Pipeline { .. } => false,
        }
    }

    /// The literal, when the expression is exactly one.
    pub fn as_literal(&self) -> Option<&Literal> {
        match &self.kind {
            ScalarExprKind::Literal(l) => Some(l),
            _ => None,
        }
    }
}

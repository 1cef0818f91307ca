//! Lowering a TraceQL search to a DataFusion logical plan over the span table.
//!
//! The plan reads the table once. One projection computes, per span, a flag column for
//! every `{ … }` filter of the query and the values that later stages need (aggregate
//! arguments, `by()` keys, attributes to show); a filter keeps spans for which some
//! flag holds. The pipeline then becomes a chain of steps over *membership columns*
//! (see [`crate::ops`]): row-local steps are projections, per-trace steps are span-set
//! operator nodes. The last step's spans, grouped by trace and spanset, are the result.

use crate::error::PlanError;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, cast, when};
use datafusion::prelude::{ident as col, lit};
use traceql_parser::ast::visit::Visitor;
use traceql_parser::ast::{
    Aggregate, ArithmeticOp, BinaryOp, Field, FieldExpr, FieldExprKind, FieldRef, Intrinsic,
    Literal, Pipeline, QueryBody, ScalarExpr, ScalarExprKind, SpansetExpr, SpansetExprKind,
    SpansetOp, Stage,
};
use traceql_parser::{Query, Span};

use crate::eval::udf::{Output, field_expr_call};
use crate::eval::value::{self, Val};
use crate::native::{Holds, as_filter, native_column, native_filter};
use crate::ops::TraceOp;
use crate::ops::aggregate::AggregateFilter;
use crate::ops::group_by::GroupBy;
use crate::ops::node::TraceNode;
use crate::ops::spanset_logic::{Logic, SpansetLogic};
use crate::ops::structural::Structural;
use crate::shown::plain_type;
use traceql_format::facts::Facts;
use traceql_format::schema::columns as c;

/// The column of the result plan holding each span's spanset index within its trace.
pub const SPANSET: &str = "__spanset";

/// The span-table columns every result row carries.
pub const RESULT_COLUMNS: &[&str] = &[
    c::TRACE_ID,
    c::SPAN_ID,
    c::NAME,
    c::START_UNIX_NANO,
    c::DURATION_NANO,
    c::STATUS_CODE,
    c::TRACE_ROOT_SERVICE,
    c::TRACE_ROOT_NAME,
    c::TRACE_START_UNIX_NANO,
    c::TRACE_DURATION_NANO,
];

/// The columns the span-set operators read besides membership columns.
const OPERATOR_COLUMNS: &[&str] = &[
    c::NESTED_SET_LEFT,
    c::NESTED_SET_RIGHT,
    c::NESTED_SET_PARENT,
];

/// How a spanset attribute's values are to be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeKind {
    /// A value column ([`traceql_format::schema::value_column_type`]).
    Value,
    /// The plain column holding the attribute's only value for every span, of
    /// [`plain_type`]`(holds)`, shown with [`crate::shown::plain_shown`].
    Plain(Holds),
    /// `Float64` holding an integer count.
    Int,
    /// `Float64` holding nanoseconds.
    Duration,
    /// `Float64`.
    Float,
}

/// An attribute shown with results: its name and the result column holding it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultAttribute {
    /// The name shown, e.g. `http.method`, `count()`, `by(resource.service.name)`.
    pub name: String,
    /// The result column.
    pub column: String,
    /// How the column's values are shown.
    pub kind: AttributeKind,
}

/// A lowered search.
#[derive(Debug, Clone)]
pub struct SearchPlan {
    /// The plan: [`RESULT_COLUMNS`], [`SPANSET`], then the attribute columns.
    pub plan: LogicalPlan,
    /// Attributes of each span's spanset (`by()` values, aggregate results).
    pub spanset_attributes: Vec<ResultAttribute>,
    /// Attributes of each span the query touched or selected.
    pub span_attributes: Vec<ResultAttribute>,
}

fn not_supported(what: &str) -> DataFusionError {
    PlanError::unsupported(format!("{what} is not supported yet"))
}

enum Step {
    Project(String, Expr),
    Operator(TraceOp),
}

struct Lowering<'a> {
    schema: &'a Schema,
    facts: &'a Facts,
    /// Columns computed by the first projection: flags and values.
    computed: Vec<(String, Expr)>,
    steps: Vec<Step>,
    /// What each spanset filter selects, as a filter on the scan (see [`as_filter`]).
    selects: Vec<Expr>,
    needs_all_spans: bool,
    spanset_attributes: Vec<ResultAttribute>,
    shown: Vec<Field>,
    next: usize,
}

impl Lowering<'_> {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("__{prefix}{}", self.next)
    }

    fn compute(&mut self, prefix: &str, expr: Expr) -> String {
        let name = self.fresh(prefix);
        self.computed.push((name.clone(), expr));
        name
    }

    fn project(&mut self, expr: Expr) -> String {
        let name = self.fresh("m");
        self.steps.push(Step::Project(name.clone(), expr));
        name
    }

    fn pipeline(&mut self, pipeline: &Pipeline, mut current: String, top: bool) -> Result<String> {
        for (i, stage) in pipeline.stages.iter().enumerate() {
            if i == 0 && !matches!(stage, Stage::Spanset(_)) {
                self.needs_all_spans = true;
            }
            current = match stage {
                Stage::Spanset(expr) => self.spanset(expr, current)?,
                Stage::ScalarFilter(filter) => {
                    let ScalarExprKind::Aggregate(aggregate) = &filter.lhs.kind else {
                        return Err(not_supported(
                            "a scalar filter whose left side is not an aggregate",
                        ));
                    };
                    let threshold = constant(&filter.rhs)?;
                    let argument = match aggregate.arg() {
                        Some(arg) => {
                            let call = field_expr_call(
                                Some(arg),
                                Output::Number,
                                self.schema,
                                self.facts,
                            )?;
                            Some(self.compute("v", call))
                        }
                        None => None,
                    };
                    let output = self.fresh("m");
                    let value = self.fresh("agg");
                    let label = aggregate.to_string();
                    if top {
                        self.spanset_attributes.push(ResultAttribute {
                            name: label.clone(),
                            column: value.clone(),
                            kind: aggregate_kind(aggregate),
                        });
                    }
                    self.steps
                        .push(Step::Operator(TraceOp::Aggregate(AggregateFilter {
                            function: aggregate.function(),
                            op: filter.op,
                            threshold_bits: threshold.to_bits(),
                            label,
                            input: current,
                            argument,
                            output: output.clone(),
                            value,
                        })));
                    output
                }
                Stage::GroupBy { expr, .. } => {
                    if !top {
                        return Err(PlanError::internal(
                            "`by()` inside a spanset operand reached the planner: check queries \
                             with traceql_parser::check_supported first",
                        ));
                    }
                    let call = field_expr_call(Some(expr), Output::Value, self.schema, self.facts)?;
                    let key = self.compute("key", call);
                    let output = self.fresh("m");
                    self.spanset_attributes.push(ResultAttribute {
                        name: format!("by({expr})"),
                        column: key.clone(),
                        kind: AttributeKind::Value,
                    });
                    self.steps.push(Step::Operator(TraceOp::GroupBy(GroupBy {
                        label: expr.to_string(),
                        input: current,
                        key,
                        output: output.clone(),
                    })));
                    output
                }
                Stage::Select { fields, .. } => {
                    for FieldRef { field, .. } in fields {
                        self.show(field);
                    }
                    current
                }
                Stage::Coalesce { .. } => {
                    if top {
                        self.spanset_attributes.clear();
                    }
                    self.project(when(col(current.as_str()).is_not_null(), lit(0i32)).end()?)
                }
            };
        }
        Ok(current)
    }

    fn spanset(&mut self, expr: &SpansetExpr, current: String) -> Result<String> {
        match &expr.kind {
            SpansetExprKind::Filter(field) => {
                let flag = match field {
                    None => {
                        self.needs_all_spans = true;
                        lit(true)
                    }
                    Some(e) => {
                        self.touch(e);
                        match native_filter(e, self.schema, self.facts) {
                            Some(native) => native,
                            None => {
                                field_expr_call(Some(e), Output::Filter, self.schema, self.facts)?
                            }
                        }
                    }
                };
                self.selects.push(as_filter(flag.clone()));
                let flag = self.compute("f", flag);
                Ok(self.project(when(col(flag.as_str()), col(current.as_str())).end()?))
            }
            SpansetExprKind::Binary { op, lhs, rhs } => {
                let l = self.spanset(lhs, current.clone())?;
                let r = self.spanset(rhs, current)?;
                let output = self.fresh("m");
                let step = match op {
                    SpansetOp::And | SpansetOp::Or => TraceOp::Logic(SpansetLogic {
                        op: if *op == SpansetOp::And {
                            Logic::And
                        } else {
                            Logic::Or
                        },
                        lhs: l,
                        rhs: r,
                        output: output.clone(),
                    }),
                    op => TraceOp::Structural(Structural {
                        op: *op,
                        lhs: l,
                        rhs: r,
                        output: output.clone(),
                    }),
                };
                self.steps.push(Step::Operator(step));
                Ok(output)
            }
            SpansetExprKind::Pipeline(p) => self.pipeline(p, current, false),
        }
    }

    /// Records the fields of a filter expression, to be shown with result spans.
    fn touch(&mut self, expr: &FieldExpr) {
        struct Fields<'l, 'a>(&'l mut Lowering<'a>);
        impl Visitor<'_> for Fields<'_, '_> {
            fn visit_field(&mut self, field: &Field, _: Span) {
                self.0.show(field);
            }
        }
        Fields(self).visit_field_expr(expr);
    }

    fn show(&mut self, field: &Field) {
        let hidden = matches!(
            field,
            Field::Intrinsic(
                Intrinsic::Name
                    | Intrinsic::Duration
                    | Intrinsic::SpanId
                    | Intrinsic::TraceId
                    | Intrinsic::TraceDuration
                    | Intrinsic::RootName
                    | Intrinsic::RootService
                    | Intrinsic::Parent
                    | Intrinsic::ChildCount
            )
        ) || matches!(field, Field::Attribute(a) if a.parent);
        if !hidden && !self.shown.contains(field) {
            self.shown.push(field.clone());
        }
    }
}

fn aggregate_kind(aggregate: &Aggregate) -> AttributeKind {
    match aggregate.arg().map(|a| &a.kind) {
        None => AttributeKind::Int,
        Some(FieldExprKind::Field(Field::Intrinsic(
            Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart,
        ))) => AttributeKind::Duration,
        Some(_) => AttributeKind::Float,
    }
}

/// The value of a constant scalar expression (integer arithmetic stays integer).
pub fn constant(expr: &ScalarExpr) -> Result<f64> {
    fn eval(expr: &ScalarExpr) -> Result<Val<'static>> {
        match &expr.kind {
            ScalarExprKind::Literal(Literal::Int(i)) => Ok(Val::Int(*i)),
            ScalarExprKind::Literal(Literal::Float(f)) => Ok(Val::Float(*f)),
            ScalarExprKind::Literal(Literal::Duration(d)) => Ok(Val::Dur(*d)),
            ScalarExprKind::Neg(e) => value::negate(&eval(e)?)?
                .ok_or_else(|| not_supported("a non-numeric scalar constant")),
            ScalarExprKind::Binary { op, lhs, rhs } => {
                let op = match op {
                    ArithmeticOp::Add => BinaryOp::Add,
                    ArithmeticOp::Sub => BinaryOp::Sub,
                    ArithmeticOp::Mul => BinaryOp::Mul,
                    ArithmeticOp::Div => BinaryOp::Div,
                    ArithmeticOp::Mod => BinaryOp::Mod,
                    ArithmeticOp::Pow => BinaryOp::Pow,
                };
                value::arithmetic(op, &eval(lhs)?, &eval(rhs)?)?
                    .ok_or_else(|| not_supported("a non-numeric scalar constant"))
            }
            _ => Err(not_supported(
                "a scalar filter whose right side is not a constant",
            )),
        }
    }
    eval(expr)?
        .as_f64()
        .ok_or_else(|| not_supported("a non-numeric scalar constant"))
}

/// A value computed for every result span and kept in the plan as `column`.
#[derive(Clone, Debug)]
pub struct ExtraValue {
    /// The plan column.
    pub column: String,
    /// The expression over span-table columns computing it.
    pub expr: Expr,
}

/// Lowers a search query to a plan over `input`, a scan of the span table that
/// `facts` describe.
pub fn plan_search(query: &Query, input: LogicalPlan, facts: &Facts) -> Result<SearchPlan> {
    let QueryBody::Search(pipeline) = &query.body else {
        return Err(not_supported(
            "metrics queries (`rate()`, `count_over_time()`, …) in search",
        ));
    };
    plan_pipeline(pipeline, input, facts, true, &[])
}

/// Lowers a pipeline to a plan over `input` whose rows are the spans it selects. With
/// `show`, the attributes the query touches are computed for display; `extra` values
/// are computed and kept under their own column names.
pub fn plan_pipeline(
    pipeline: &Pipeline,
    input: LogicalPlan,
    facts: &Facts,
    show: bool,
    extra: &[ExtraValue],
) -> Result<SearchPlan> {
    let input_schema = Arc::clone(input.schema());
    let schema = Arc::clone(input_schema.inner());
    let mut lowering = Lowering {
        schema: &schema,
        facts,
        computed: Vec::new(),
        steps: Vec::new(),
        selects: Vec::new(),
        needs_all_spans: false,
        spanset_attributes: Vec::new(),
        shown: Vec::new(),
        next: 0,
    };
    let start = "__all".to_string();
    let result = lowering.pipeline(pipeline, start.clone(), true)?;

    // Attributes shown with result spans are computed last, for result spans only; the
    // columns they read are carried from the scan.
    let mut span_attributes = Vec::new();
    let mut shown_values = Vec::new();
    let mut carried: Vec<String> = Vec::new();
    let shown = if show {
        lowering.shown.clone()
    } else {
        Vec::new()
    };
    let mut values: Vec<(String, Expr)> = Vec::new();
    for field in shown {
        let column = lowering.fresh("attr");
        // A plain column is shown as it is, each distinct value rendered once; anything
        // else through the row evaluator.
        let (value, kind) = match native_column(&field, &schema, facts) {
            Some((plain, holds)) => {
                let wanted = plain_type(holds);
                let plain = if plain.get_type(&input_schema)? == wanted {
                    plain
                } else {
                    cast(plain, wanted)
                };
                (plain, AttributeKind::Plain(holds))
            }
            None => {
                let expr = FieldExpr {
                    kind: FieldExprKind::Field(field.clone()),
                    span: Span::default(),
                };
                let call = field_expr_call(Some(&expr), Output::Value, &schema, facts)?;
                (call, AttributeKind::Value)
            }
        };
        values.push((column.clone(), value));
        span_attributes.push(ResultAttribute {
            name: shown_name(&field),
            column,
            kind,
        });
    }
    for value in extra {
        values.push((value.column.clone(), value.expr.clone()));
    }
    for (column, call) in values {
        // `column_refs` is a hash set: sorted, so the same query gives the same plan.
        let mut refs: Vec<String> = call.column_refs().iter().map(|c| c.name.clone()).collect();
        refs.sort();
        for name in refs {
            let fixed = RESULT_COLUMNS
                .iter()
                .chain(OPERATOR_COLUMNS)
                .any(|c| *c == name);
            if !fixed && !carried.contains(&name) {
                carried.push(name);
            }
        }
        shown_values.push(call.alias(column.as_str()));
    }

    // One scan: the columns results and operators need, flags and values.
    let mut first: Vec<Expr> = RESULT_COLUMNS
        .iter()
        .chain(OPERATOR_COLUMNS)
        .map(|name| col(*name))
        .chain(carried.iter().map(|name| col(name.as_str())))
        .collect();
    first.push(lit(0i32).alias(&start));
    first.extend(
        lowering
            .computed
            .iter()
            .map(|(name, e)| e.clone().alias(name)),
    );
    // One spanset filter: its members are exactly the spans the filter keeps, so the
    // result needs no filter of its own.
    let filtered = !lowering.needs_all_spans
        && lowering.selects.len() == 1
        && matches!(lowering.steps.as_slice(), [Step::Project(name, _)] if *name == result);
    // Only spans that some filter selects take part, unless a stage needs every span.
    let mut builder = LogicalPlanBuilder::from(input);
    let selects = std::mem::take(&mut lowering.selects);
    if let Some(any) = selects.into_iter().reduce(Expr::or)
        && !lowering.needs_all_spans
    {
        builder = builder.filter(any)?;
    }
    let mut plan = builder.project(first)?.build()?;
    for step in lowering.steps {
        plan = match step {
            Step::Project(name, expr) => {
                let mut exprs: Vec<Expr> = plan
                    .schema()
                    .columns()
                    .into_iter()
                    .map(Expr::Column)
                    .collect();
                exprs.push(expr.alias(name));
                LogicalPlanBuilder::from(plan).project(exprs)?.build()?
            }
            Step::Operator(op) => TraceNode::try_new(plan, op)?.into_plan(),
        };
    }

    // The result columns are named after what they show (`count()`, `http.method`).
    let mut last: Vec<Expr> = RESULT_COLUMNS.iter().map(|name| col(*name)).collect();
    last.push(col(result.as_str()).alias(SPANSET));
    let mut used: Vec<String> = RESULT_COLUMNS.iter().map(|c| c.to_string()).collect();
    used.push(SPANSET.to_string());
    let mut spanset_attributes = lowering.spanset_attributes;
    for attr in spanset_attributes
        .iter_mut()
        .chain(span_attributes.iter_mut())
    {
        let mut name = attr.name.clone();
        while used.contains(&name) {
            name.push('\'');
        }
        used.push(name.clone());
        last.push(col(attr.column.as_str()).alias(name.as_str()));
        attr.column = name;
    }
    last.extend(extra.iter().map(|value| col(value.column.as_str())));
    let mut kept: Vec<Expr> = plan
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    kept.extend(shown_values);
    let mut builder = LogicalPlanBuilder::from(plan);
    if !filtered {
        builder = builder.filter(col(result.as_str()).is_not_null())?;
    }
    let plan = builder.project(kept)?.project(last)?.build()?;
    Ok(SearchPlan {
        plan,
        spanset_attributes,
        span_attributes,
    })
}

/// The name an attribute is shown under: the attribute name without its scope, or the
/// intrinsic's name.
fn shown_name(field: &Field) -> String {
    match field {
        Field::Attribute(a) => a.name.clone(),
        Field::Intrinsic(i) => i.canonical_name().to_string(),
    }
}

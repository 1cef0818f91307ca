//! proptest strategies that generate the ASTs the parser can produce.
//!
//! The generators respect what the grammar can express: literals are non-negative
//! (a minus sign is a prefix operator), `nil` only appears beside `=`/`!=`, a
//! parenthesised pipeline operand is never a lone spanset expression, and metrics
//! arithmetic always involves a metrics query.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use traceql_parser::Span;
use traceql_parser::ast::*;

fn sp() -> Span {
    Span::default()
}

fn attribute_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_.]{0,12}",
        1 => "[a-z]{1,4}[-/:+*%'.][a-z0-9]{1,4}",
        1 => "[0-9][a-z]{0,3}",
        1 => "[ -~]{0,8}",
        1 => "\\PC{0,6}",
    ]
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (
        prop_oneof![
            Just(AttributeScope::Unscoped),
            Just(AttributeScope::Span),
            Just(AttributeScope::Resource),
            Just(AttributeScope::Event),
            Just(AttributeScope::Link),
            Just(AttributeScope::Instrumentation),
        ],
        prop::bool::weighted(0.1),
        attribute_name(),
    )
        .prop_map(|(scope, parent, name)| {
            let scope =
                if parent && !matches!(scope, AttributeScope::Span | AttributeScope::Resource) {
                    AttributeScope::Unscoped
                } else {
                    scope
                };
            Attribute {
                scope,
                parent,
                name,
            }
        })
}

fn intrinsic() -> impl Strategy<Value = Intrinsic> {
    use Intrinsic::*;
    prop::sample::select(vec![
        Name,
        Duration,
        Status,
        StatusMessage,
        Kind,
        SpanId,
        ParentId,
        ChildCount,
        TraceId,
        TraceDuration,
        RootName,
        RootService,
        EventName,
        EventTimeSinceStart,
        LinkTraceId,
        LinkSpanId,
        InstrumentationName,
        InstrumentationVersion,
        NestedSetLeft,
        NestedSetRight,
        NestedSetParent,
        Parent,
    ])
}

pub fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        3 => attribute().prop_map(Field::Attribute),
        1 => intrinsic().prop_map(Field::Intrinsic),
    ]
}

fn field_ref() -> impl Strategy<Value = FieldRef> {
    field().prop_map(|field| FieldRef { field, span: sp() })
}

/// Non-negative numbers and durations.
fn number() -> impl Strategy<Value = Literal> {
    prop_oneof![
        (0..i64::MAX).prop_map(Literal::Int),
        Just(Literal::Int(i64::MIN)),
        (0.0..1e300f64).prop_map(Literal::Float),
        prop_oneof![Just(0.5f64), Just(1.0), Just(1e-7), Just(123456789.0)]
            .prop_map(Literal::Float),
        (0..i64::MAX).prop_map(Literal::Duration),
        prop_oneof![Just(1_000_000i64), Just(3_600_000_000_000)].prop_map(Literal::Duration),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        3 => number(),
        2 => "\\PC{0,8}".prop_map(Literal::String),
        1 => "[\\x00-\\x7f\u{80}-\u{9f}]{0,4}".prop_map(Literal::String),
        1 => any::<bool>().prop_map(Literal::Bool),
        1 => prop::sample::select(vec![Status::Ok, Status::Error, Status::Unset]).prop_map(Literal::Status),
        1 => prop::sample::select(vec![
            SpanKind::Unspecified, SpanKind::Internal, SpanKind::Server,
            SpanKind::Client, SpanKind::Producer, SpanKind::Consumer,
        ]).prop_map(Literal::Kind),
    ]
}

fn fe(kind: FieldExprKind) -> FieldExpr {
    FieldExpr { kind, span: sp() }
}

pub fn field_expr() -> BoxedStrategy<FieldExpr> {
    let leaf = prop_oneof![
        literal().prop_map(|l| fe(FieldExprKind::Literal(l))),
        field().prop_map(|f| fe(FieldExprKind::Field(f))),
    ];
    leaf.prop_recursive(5, 32, 2, |inner| {
        use BinaryOp::*;
        let op = prop::sample::select(vec![
            Add, Sub, Mul, Div, Mod, Pow, Eq, Neq, Lt, Lte, Gt, Gte, Regex, NotRegex, And, Or,
        ]);
        prop_oneof![
            3 => (op, inner.clone(), inner.clone()).prop_map(|(op, l, r)| fe(FieldExprKind::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
            })),
            1 => (prop::sample::select(vec![UnaryOp::Neg, UnaryOp::Not]), inner.clone())
                .prop_map(|(op, e)| fe(FieldExprKind::Unary { op, expr: Box::new(e) })),
            1 => (prop::sample::select(vec![Eq, Neq]), inner, any::<bool>()).prop_map(|(op, e, nil_first)| {
                let nil = Box::new(fe(FieldExprKind::Literal(Literal::Nil)));
                let (lhs, rhs) = if nil_first { (nil, Box::new(e)) } else { (Box::new(e), nil) };
                fe(FieldExprKind::Binary { op, lhs, rhs })
            }),
        ]
    })
    .boxed()
}

fn se(kind: ScalarExprKind) -> ScalarExpr {
    ScalarExpr { kind, span: sp() }
}

fn aggregate() -> impl Strategy<Value = Aggregate> {
    prop_oneof![
        Just(Aggregate::Count),
        field_expr().prop_map(Aggregate::Avg),
        field_expr().prop_map(Aggregate::Min),
        field_expr().prop_map(Aggregate::Max),
        field_expr().prop_map(Aggregate::Sum),
    ]
}

/// Constants: non-negative numbers, `-`, and the given operators.
fn constant(ops: Vec<ArithmeticOp>, durations: bool) -> BoxedStrategy<ScalarExpr> {
    let leaf = number()
        .prop_filter("no durations", move |l| {
            durations || !matches!(l, Literal::Duration(_))
        })
        .prop_map(|l| se(ScalarExprKind::Literal(l)));
    scalar_tree(leaf.boxed(), ops)
}

fn scalar_tree(
    leaf: BoxedStrategy<ScalarExpr>,
    ops: Vec<ArithmeticOp>,
) -> BoxedStrategy<ScalarExpr> {
    leaf.prop_recursive(3, 12, 2, move |inner| {
        prop_oneof![
            3 => (prop::sample::select(ops.clone()), inner.clone(), inner.clone()).prop_map(|(op, l, r)| se(ScalarExprKind::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
            })),
            1 => inner.prop_map(|e| se(ScalarExprKind::Neg(Box::new(e)))),
        ]
    })
    .boxed()
}

fn all_arithmetic() -> Vec<ArithmeticOp> {
    use ArithmeticOp::*;
    vec![Add, Sub, Mul, Div, Mod, Pow]
}

fn comparison() -> impl Strategy<Value = ComparisonOp> {
    use ComparisonOp::*;
    prop::sample::select(vec![Eq, Neq, Lt, Lte, Gt, Gte])
}

/// A scalar expression with at least one aggregate in it.
fn scalar_with_aggregate() -> BoxedStrategy<ScalarExpr> {
    let agg = aggregate()
        .prop_map(|a| se(ScalarExprKind::Aggregate(a)))
        .boxed();
    (
        agg,
        constant(all_arithmetic(), true),
        prop::sample::select(all_arithmetic()),
        0..3u8,
    )
        .prop_map(|(a, c, op, shape)| match shape {
            0 => a,
            1 => se(ScalarExprKind::Binary {
                op,
                lhs: Box::new(a),
                rhs: Box::new(c),
            }),
            _ => se(ScalarExprKind::Binary {
                op,
                lhs: Box::new(c),
                rhs: Box::new(a),
            }),
        })
        .boxed()
}

fn scalar_filter() -> impl Strategy<Value = ScalarFilter> {
    (
        comparison(),
        scalar_with_aggregate(),
        prop_oneof![constant(all_arithmetic(), true), scalar_with_aggregate()],
    )
        .prop_map(|(op, lhs, rhs)| ScalarFilter {
            op,
            lhs,
            rhs,
            span: sp(),
        })
}

fn spanset_filter() -> impl Strategy<Value = SpansetExpr> {
    prop::option::weighted(0.8, field_expr()).prop_map(|f| SpansetExpr {
        kind: SpansetExprKind::Filter(f),
        span: sp(),
    })
}

fn spanset_op() -> impl Strategy<Value = SpansetOp> {
    use SpansetOp::*;
    prop::sample::select(vec![
        And,
        Or,
        Child,
        Parent,
        Descendant,
        Ancestor,
        Sibling,
        NotChild,
        NotParent,
        NotDescendant,
        NotAncestor,
        NotSibling,
        UnionChild,
        UnionParent,
        UnionDescendant,
        UnionAncestor,
        UnionSibling,
    ])
}

/// Spanset expressions; `pipeline` supplies parenthesised pipeline operands.
fn spanset_expr(pipeline: BoxedStrategy<Pipeline>) -> BoxedStrategy<SpansetExpr> {
    let leaf = prop_oneof![
        4 => spanset_filter(),
        1 => pipeline.prop_filter("a lone spanset in parentheses is just that spanset", |p| {
            !(p.stages.len() == 1 && matches!(p.stages[0], Stage::Spanset(_)))
        })
        .prop_map(|p| SpansetExpr { kind: SpansetExprKind::Pipeline(p), span: sp() }),
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        (spanset_op(), inner.clone(), inner).prop_map(|(op, l, r)| SpansetExpr {
            kind: SpansetExprKind::Binary {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
            },
            span: sp(),
        })
    })
    .boxed()
}

fn stage(spanset: BoxedStrategy<SpansetExpr>) -> impl Strategy<Value = Stage> {
    prop_oneof![
        4 => spanset.prop_map(Stage::Spanset),
        2 => scalar_filter().prop_map(Stage::ScalarFilter),
        1 => field_expr().prop_map(|expr| Stage::GroupBy { expr, span: sp() }),
        1 => prop::collection::vec(field_ref(), 1..4).prop_map(|fields| Stage::Select { fields, span: sp() }),
        1 => Just(Stage::Coalesce { span: sp() }),
    ]
}

fn make_pipeline(stages: Vec<Stage>) -> Pipeline {
    let mut stages = stages;
    if matches!(stages[0], Stage::Coalesce { .. }) {
        stages[0] = Stage::Spanset(SpansetExpr {
            kind: SpansetExprKind::Filter(None),
            span: sp(),
        });
    }
    Pipeline { stages, span: sp() }
}

/// Two plain filters: the innermost parenthesised pipeline operand.
fn simple_pipeline() -> BoxedStrategy<Pipeline> {
    prop::collection::vec(spanset_filter().prop_map(Stage::Spanset), 2..3)
        .prop_map(make_pipeline)
        .boxed()
}

/// Search pipelines, nested through parenthesised operands.
pub fn pipeline() -> BoxedStrategy<Pipeline> {
    let inner = prop::collection::vec(stage(spanset_expr(simple_pipeline())), 1..4)
        .prop_map(make_pipeline)
        .boxed();
    prop::collection::vec(stage(spanset_expr(inner)), 1..4)
        .prop_map(make_pipeline)
        .boxed()
}

fn metrics_function() -> impl Strategy<Value = MetricsFunction> {
    use MetricsFunction::*;
    prop_oneof![
        Just(Rate),
        Just(CountOverTime),
        field_ref().prop_map(MinOverTime),
        field_ref().prop_map(MaxOverTime),
        field_ref().prop_map(AvgOverTime),
        field_ref().prop_map(SumOverTime),
        field_ref().prop_map(HistogramOverTime),
        (field_ref(), prop::collection::vec(-2.0..2.0f64, 1..4))
            .prop_map(|(field, quantiles)| QuantileOverTime { field, quantiles }),
        (
            prop::option::of(field_expr()),
            prop::option::of((0..2000i64, prop::option::of((0..10i64, 0..10i64))))
        )
            .prop_map(|(filter, n)| Compare {
                filter,
                top_n: n.as_ref().map(|(n, _)| *n),
                range: n.and_then(|(_, r)| r),
            }),
    ]
}

fn me(kind: MetricsExprKind) -> MetricsExpr {
    MetricsExpr { kind, span: sp() }
}

fn second_stage() -> impl Strategy<Value = SecondStage> {
    let threshold = prop_oneof![
        constant(
            vec![
                ArithmeticOp::Add,
                ArithmeticOp::Sub,
                ArithmeticOp::Mul,
                ArithmeticOp::Div
            ],
            false
        ),
        (0..i64::MAX, any::<bool>()).prop_map(|(d, neg)| {
            let lit = se(ScalarExprKind::Literal(Literal::Duration(d)));
            if neg {
                se(ScalarExprKind::Neg(Box::new(lit)))
            } else {
                lit
            }
        }),
    ];
    prop_oneof![
        (0..100i64).prop_map(SecondStage::TopK),
        (0..100i64).prop_map(SecondStage::BottomK),
        (comparison(), threshold).prop_map(|(op, threshold)| SecondStage::Filter { op, threshold }),
    ]
}

/// Metrics expressions that contain at least one metrics query.
pub fn metrics_expr() -> BoxedStrategy<MetricsExpr> {
    let query = (
        pipeline(),
        metrics_function(),
        prop::collection::vec(field_ref(), 0..3),
    )
        .prop_map(|(pipeline, function, by)| {
            me(MetricsExprKind::Query(MetricsQuery {
                pipeline,
                function,
                by,
                span: sp(),
            }))
        });
    let constant = constant(
        vec![
            ArithmeticOp::Add,
            ArithmeticOp::Sub,
            ArithmeticOp::Mul,
            ArithmeticOp::Div,
        ],
        false,
    )
    .prop_map(|c| me(MetricsExprKind::Constant(c)));
    query
        .boxed()
        .prop_recursive(3, 8, 2, move |inner| {
            let arith = prop::sample::select(vec![
                ArithmeticOp::Add,
                ArithmeticOp::Sub,
                ArithmeticOp::Mul,
                ArithmeticOp::Div,
            ]);
            prop_oneof![
                (inner.clone(), second_stage()).prop_map(|(input, stage)| me(
                    MetricsExprKind::Stage {
                        input: Box::new(input),
                        stage
                    }
                )),
                (
                    arith,
                    inner.clone(),
                    prop_oneof![inner.clone(), constant.clone()],
                    any::<bool>()
                )
                    .prop_map(|(op, m, other, swap)| {
                        let (lhs, rhs) = if swap { (other, m) } else { (m, other) };
                        me(MetricsExprKind::Binary {
                            op,
                            lhs: Box::new(lhs),
                            rhs: Box::new(rhs),
                        })
                    }),
            ]
        })
        .boxed()
}

fn hint() -> impl Strategy<Value = Hint> {
    let value = prop_oneof![
        any::<i64>().prop_map(Literal::Int),
        (-1e9..1e9f64).prop_map(Literal::Float),
        any::<i64>()
            .prop_filter("in range", |d| *d != i64::MIN)
            .prop_map(Literal::Duration),
        "\\PC{0,6}".prop_map(Literal::String),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Status(Status::Error)),
        Just(Literal::Kind(SpanKind::Server)),
    ];
    ("[a-z_][a-z0-9_]{0,10}", value).prop_map(|(name, value)| Hint {
        name,
        value,
        span: sp(),
    })
}

/// Whole queries: searches (including wrapped scalar comparisons) and metrics.
pub fn query() -> impl Strategy<Value = Query> {
    let wrapped = (pipeline(), aggregate(), comparison(), number()).prop_map(
        |(pipeline, aggregate, op, n)| Pipeline {
            stages: vec![Stage::ScalarFilter(ScalarFilter {
                op,
                lhs: se(ScalarExprKind::Pipeline {
                    pipeline,
                    aggregate,
                }),
                rhs: se(ScalarExprKind::Literal(n)),
                span: sp(),
            })],
            span: sp(),
        },
    );
    let body = prop_oneof![
        4 => pipeline().prop_map(QueryBody::Search),
        1 => wrapped.prop_map(QueryBody::Search),
        3 => metrics_expr().prop_map(QueryBody::Metrics),
    ];
    (body, prop::collection::vec(hint(), 0..3)).prop_map(|(body, hints)| Query {
        body,
        hints,
        span: sp(),
    })
}

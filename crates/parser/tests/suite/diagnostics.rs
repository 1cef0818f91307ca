//! Rendered diagnostics, pinned as snapshots: message, position, underline and hint.

use traceql_parser::{ErrorKind, check_supported, parse_and_validate};

/// Each case: snapshot name, query, expected kind.
const CASES: &[(&str, &str, ErrorKind)] = &[
    ("double_equals", "{ .a == 1 }", ErrorKind::Parse),
    (
        "status_as_string",
        "{ status = \"error\" }",
        ErrorKind::Validation,
    ),
    (
        "kind_as_string",
        "{ kind = \"server\" }",
        ErrorKind::Validation,
    ),
    (
        "missing_scope",
        "{ service.name = \"checkout\" }",
        ErrorKind::Parse,
    ),
    (
        "scope_typo",
        "{ spn.http.method = \"GET\" }",
        ErrorKind::Parse,
    ),
    ("intrinsic_typo", "{ duraton > 1s }", ErrorKind::Parse),
    (
        "wrong_scope_for_intrinsic",
        "{ trace:status = error }",
        ErrorKind::Parse,
    ),
    (
        "scoped_intrinsic_typo",
        "{ span:durration > 1s }",
        ErrorKind::Parse,
    ),
    ("unclosed_brace", "{ .a = 1 && .b = 2", ErrorKind::Parse),
    ("unclosed_paren", "{ (.a = 1 || .b = 2 }", ErrorKind::Parse),
    ("unclosed_angle", "< .a = 1", ErrorKind::Parse),
    ("bare_condition", "status = error", ErrorKind::Parse),
    ("bad_string_escape", "{ .a = \"\\q\" }", ErrorKind::Parse),
    ("bad_name_escape", "{ .\"a\\qb\" = 1 }", ErrorKind::Parse),
    ("unterminated_string", "{ .a = \"abc }", ErrorKind::Parse),
    (
        "integer_overflow",
        "{ .a = 99999999999999999999 }",
        ErrorKind::Parse,
    ),
    ("single_ampersand", "{ .a } & { .b }", ErrorKind::Parse),
    ("single_quotes", "{ .a = 'x' }", ErrorKind::Parse),
    ("empty_attribute", "{ span. = 1 }", ErrorKind::Parse),
    ("nil_as_value", "{ .a > nil }", ErrorKind::Parse),
    ("bare_aggregate", "{ } | count()", ErrorKind::Parse),
    ("unknown_function", "{ } | cnt() > 1", ErrorKind::Parse),
    ("coalesce_first", "coalesce() | { }", ErrorKind::Parse),
    ("topk_without_metrics", "{ } | topk(5)", ErrorKind::Parse),
    (
        "metrics_arithmetic_without_parens",
        "{ } | rate() * 2",
        ErrorKind::Parse,
    ),
    (
        "modulo_between_metrics",
        "({ } | rate()) % 2",
        ErrorKind::Parse,
    ),
    (
        "comparison_between_spansets",
        "{ .a } = { .b }",
        ErrorKind::Parse,
    ),
    ("trailing_tokens", "{ .a } { .b }", ErrorKind::Parse),
    ("multi_line", "{ .a = 1 &&\n  .b = }", ErrorKind::Parse),
    ("empty_query", "   ", ErrorKind::Parse),
    ("filter_not_boolean", "{ status }", ErrorKind::Validation),
    ("type_mismatch", "{ 1 = \"foo\" }", ErrorKind::Validation),
    (
        "invalid_regex",
        "{ span.foo =~ \"[\" }",
        ErrorKind::Validation,
    ),
    (
        "intrinsic_nil",
        "{ span:status = nil }",
        ErrorKind::Validation,
    ),
    ("ordering_status", "{ status > ok }", ErrorKind::Validation),
    (
        "constant_aggregate",
        "{ } | sum(3) = 2",
        ErrorKind::Validation,
    ),
    ("topk_zero", "{ } | rate() | topk(0)", ErrorKind::Validation),
    (
        "quantile_out_of_range",
        "{ } | quantile_over_time(duration, 1.5)",
        ErrorKind::Validation,
    ),
    (
        "compare_with_topk",
        "{ } | compare({ status = error }) | topk(10)",
        ErrorKind::Validation,
    ),
    (
        "parent_attribute",
        "{ parent.http.method = \"GET\" }",
        ErrorKind::Unsupported,
    ),
    (
        "aggregate_vs_aggregate",
        "min(.a) < max(duration)",
        ErrorKind::Unsupported,
    ),
];

#[test]
fn diagnostics_are_rendered_with_position_underline_and_hint() {
    for (name, query, kind) in CASES {
        let err = parse_and_validate(query).expect_err(name);
        assert_eq!(err.kind, *kind, "{name}: {err}");
        let rendered = err.render(query, false);
        insta::with_settings!({ description => *query, omit_expression => true }, {
            insta::assert_snapshot!(*name, rendered);
        });
    }
}

/// Valid TraceQL the engine does not run yet: `validate` (what `traceql fmt` checks)
/// accepts it, `check_supported` (what running a query checks) refuses it where it is.
const ENGINE_CASES: &[(&str, &str)] = &[(
    "by_inside_an_operand",
    "({ .a = 1 } | by(.b)) && { .c = 2 }",
)];

#[test]
fn what_the_engine_cannot_run_yet_is_refused_with_its_position() {
    for (name, query) in ENGINE_CASES {
        let parsed = parse_and_validate(query).expect(name);
        let err = check_supported(&parsed).expect_err(name);
        assert_eq!(err.kind, ErrorKind::Unsupported, "{name}: {err}");
        let rendered = err.render(query, false);
        insta::with_settings!({ description => *query, omit_expression => true }, {
            insta::assert_snapshot!(*name, rendered);
        });
    }
    for (_, query, _) in CASES {
        let Ok(parsed) = traceql_parser::parse(query) else {
            continue;
        };
        assert_eq!(
            check_supported(&parsed).err(),
            parse_and_validate(query).err(),
            "check_supported includes validate: {query}"
        );
    }
}

#[test]
fn positions_are_line_and_column_in_characters() {
    let src = "{ .naïve = 1 &&\n  .b = \"x\\q\" }";
    let err = parse_and_validate(src).unwrap_err();
    assert_eq!(err.line_col(src), (2, 10));
    let src = "{ .é = 'x' }";
    let err = parse_and_validate(src).unwrap_err();
    assert_eq!(err.line_col(src), (1, 8));
}

#[test]
fn colour_is_optional() {
    let err = parse_and_validate("{ .a == 1 }").unwrap_err();
    assert!(!err.render("{ .a == 1 }", false).contains('\u{1b}'));
    assert!(err.render("{ .a == 1 }", true).contains('\u{1b}'));
}

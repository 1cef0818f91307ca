//! Canonical printing: each input parses to the same AST as its canonical form, which
//! prints back unchanged (sqlparser-rs's `one_statement_parses_to`).

use traceql_parser::ast::*;
use traceql_parser::parse;

use crate::assert_round_trip;

/// `input` and `canonical` parse to the same AST, and that AST prints as `canonical`.
fn parses_to(input: &str, canonical: &str) {
    let ast = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    let expected = parse(canonical).unwrap_or_else(|e| panic!("{canonical:?}: {e}"));
    assert_eq!(ast, expected, "{input:?} and {canonical:?} differ");
    assert_eq!(ast.to_string(), canonical, "printing {input:?}");
    assert_round_trip(input).unwrap();
}

/// `query` is already canonical.
fn verified(query: &str) {
    parses_to(query, query);
}

#[test]
fn angle_brackets_are_braces() {
    parses_to(
        r#"< .service.name = "checkout" && status = error >"#,
        r#"{ .service.name = "checkout" && status = error }"#,
    );
    parses_to("< duration > 1s >", "{ duration > 1s }");
    parses_to("< .a > 2 > >> < .b < 3 >", "{ .a > 2 } >> { .b < 3 }");
    parses_to("< .a >= 1 > && < .b > 2 >", "{ .a >= 1 } && { .b > 2 }");
    parses_to("< >", "{ }");
    parses_to("< > > < >", "{ } > { }");
    parses_to("< .a > -1 >", "{ .a > -1 }");
    parses_to("< (.a > 1) > | count() > 2", "{ .a > 1 } | count() > 2");
    parses_to(
        "< .a = 1 > with(most_recent=true)",
        "{ .a = 1 } with(most_recent=true)",
    );
    parses_to("{ .a } ~ < .b > 2 >", "{ .a } ~ { .b > 2 }");
}

#[test]
fn intrinsics_print_in_their_short_form() {
    parses_to("{ span:duration > 2s }", "{ duration > 2s }");
    parses_to("{ span:status = error }", "{ status = error }");
    parses_to(
        "{ trace:rootService = \"a\" }",
        "{ rootServiceName = \"a\" }",
    );
    parses_to("{ trace:duration > 1s }", "{ traceDuration > 1s }");
    verified("{ span:id = \"0000000000000001\" && trace:id = \"ab\" }");
    verified(
        "{ event:name = \"exception\" && link:spanID = \"a\" && instrumentation:version = \"1\" }",
    );
}

#[test]
fn literals_print_canonically() {
    parses_to("{ .a = `raw \\ \"` }", r#"{ .a = "raw \\ \"" }"#);
    parses_to(
        r#"{ .a = "\x41\101\u00e9\U0001F600\t" }"#,
        "{ .a = \"AAé😀\\t\" }",
    );
    parses_to("{ .a = 1. }", "{ .a = 1.0 }");
    parses_to("{ .a = .5 }", "{ .a = 0.5 }");
    parses_to("{ .a = 1e3 }", "{ .a = 1000.0 }");
    parses_to("{ duration > 1h0m0s }", "{ duration > 1h }");
    parses_to("{ duration > 1.5s }", "{ duration > 1s500ms }");
    parses_to("{ duration > 1d }", "{ duration > 24h }");
    parses_to("{ duration > .24h }", "{ duration > 14m24s }");
    parses_to(
        "{ .a != minInt && .a != maxInt }",
        "{ .a != minInt && .a != 9223372036854775807 }",
    );
    verified("{ .a = nil && .b != nil }");
}

#[test]
fn attribute_names_are_quoted_only_when_needed() {
    verified("{ span.k8s/pod-name = \"x\" }");
    verified("{ .http.status_code = 200 }");
    parses_to("{ .a+1 = 2 }", "{ .a+1 = 2 }");
    parses_to(
        "{ span.attribute.\"name with space\" = 1 }",
        "{ span.\"attribute.name with space\" = 1 }",
    );
    verified(r#"{ ."foo\" = \"bar" = "v" }"#);
    verified(r#"{ ."3xx" = 1 }"#);
    parses_to("{ span.resource.foo = 1 }", "{ span.resource.foo = 1 }");
    verified("{ parent.span.a = 1 && parent.b = 2 && parent.resource.c = 3 }");
    verified(r#"{ parent."span.a" = 1 }"#);
}

#[test]
fn precedence_follows_tempo() {
    // && and || share one level and associate left; the printer adds clarity parens.
    parses_to("{ .a || .b && .c }", "{ (.a || .b) && .c }");
    parses_to("{ .a && .b || .c }", "{ (.a && .b) || .c }");
    verified("{ .a || (.b && .c) }");
    // Unary minus sits at the + level; ! just above it.
    parses_to("{ -.a * 2 = 1 }", "{ -.a * 2 = 1 }");
    parses_to("{ .c - -.a + .b }", "{ .c - (-.a) + .b }");
    parses_to("{ !.a = .b }", "{ !.a = .b }");
    verified("{ (-.a) * 2 = 1 }");
    verified("{ (!.a) * .b }");
    // ^ is right-associative.
    parses_to("{ 2 ^ 3 ^ 2 = .a }", "{ 2 ^ 3 ^ 2 = .a }");
    verified("{ (2 ^ 3) ^ 2 = .a }");
    parses_to("{ ((.a + 1)) * 2 = 4 }", "{ (.a + 1) * 2 = 4 }");
    // nil binds to the comparison: `.a = nil + 1` is `(.a = nil) + 1`.
    parses_to("{ .a = nil + 1 }", "{ (.a = nil) + 1 }");
    // Spanset operators: structural binds tighter than && and chains to the left.
    parses_to("{ .a } && { .b } >> { .c }", "{ .a } && { .b } >> { .c }");
    verified("({ .a } && { .b }) >> { .c }");
    parses_to("{ .a } > { .b } > { .c }", "{ .a } > { .b } > { .c }");
    verified("{ .a } > ({ .b } > { .c })");
    parses_to("(({ .a }))", "{ .a }");
}

#[test]
fn all_spanset_operators_print() {
    for op in [
        "&&", "||", ">", "<", ">>", "<<", "~", "!>", "!<", "!>>", "!<<", "!~", "&>", "&<", "&>>",
        "&<<", "&~",
    ] {
        let query = format!("{{ .a }} {op} {{ .b }}");
        let ast = parse(&query).unwrap();
        let QueryBody::Search(p) = &ast.body else {
            panic!("search")
        };
        let Stage::Spanset(SpansetExpr {
            kind: SpansetExprKind::Binary { op: parsed, .. },
            ..
        }) = &p.stages[0]
        else {
            panic!("{query}: not a spanset operator")
        };
        assert_eq!(parsed.as_str(), op);
        verified(&query);
    }
}

#[test]
fn pipelines_print() {
    verified("{ .a } | count() > 1 | { .b }");
    verified("{ true } | by(resource.service.name) | avg(duration) > 20ms | coalesce()");
    verified("{ } | select(span.http.url, duration, nestedSetLeft)");
    verified("({ .a } | count() > 1) >> ({ .b } | { .c })");
    verified("(count() > 1) && { .a }");
    verified("avg(.field) > 1 - 3");
    verified("{ true } | count() + count() = 1");
    verified("({ .a } | count()) > ({ .b } | count())");
    verified("({ .a } | count()) + ({ .b } | avg(duration)) = 2");
    parses_to("{ } | max((1 + .a) * 2) = 1", "{ } | max((1 + .a) * 2) = 1");
}

#[test]
fn metrics_print() {
    verified("{ } | rate()");
    verified("{ status = error } | rate() by (resource.service.name, name)");
    verified("{ } | quantile_over_time(duration, 0.5, 0.99) by (span.http.route) | topk(5) > 1");
    parses_to(
        "{} | quantile_over_time(duration, .5, 1)",
        "{ } | quantile_over_time(duration, 0.5, 1.0)",
    );
    verified("{ } | rate() > 0 | topk(5) <= 10");
    verified("{ } | compare({ status = error }, 10, 1, 2)");
    verified("{ } | compare({ })");
    verified("({ } | rate()) + ({ } | count_over_time()) | topk(5) > 10");
    parses_to(
        "(({} | rate()) * ({} | count_over_time())) + ({} | rate())",
        "({ } | rate()) * ({ } | count_over_time()) + ({ } | rate())",
    );
    verified("3 * 2 + ({ } | rate())");
    verified("({ } | rate() > 6) * 100 > 5");
    verified("-1.5 - ({ } | rate())");
    verified("({ } | rate()) * minInt");
    parses_to(
        "({ } | max_over_time(duration)) > 10s",
        "{ } | max_over_time(duration) > 10s",
    );
    parses_to("({ } | rate()) > 1 / 2", "{ } | rate() > 1 / 2");
    verified("1 - (2 + ({ } | rate()))");
    verified("{ } | count_over_time() by (name) | topk(10) with(sample=0.1, most_recent=true)");
}

#[test]
fn hints_keep_their_order_and_the_last_wins() {
    let q = parse("{ } with(a=1) with(b=-2s, a=\"x\")").unwrap();
    assert_eq!(q.to_string(), "{ } with(a=1, b=-2s, a=\"x\")");
    assert_eq!(q.hint("a"), Some(&Literal::String("x".into())));
    assert_eq!(q.hint("b"), Some(&Literal::Duration(-2_000_000_000)));
    assert_eq!(q.hint("c"), None);
}

#[test]
fn comments_are_skipped() {
    parses_to(
        "{ status = error /* only errors */ } // trailing",
        "{ status = error }",
    );
    parses_to("// leading\n{ .a = 1 }", "{ .a = 1 }");
}

#[test]
fn every_node_carries_its_span() {
    let src = "{ .a = 1 } >> { name = \"x\" }";
    let q = parse(src).unwrap();
    let QueryBody::Search(p) = &q.body else {
        panic!()
    };
    let Stage::Spanset(e) = &p.stages[0] else {
        panic!()
    };
    assert_eq!(&src[e.span.start..e.span.end], src);
    let SpansetExprKind::Binary { lhs, rhs, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(&src[lhs.span.start..lhs.span.end], "{ .a = 1 }");
    assert_eq!(&src[rhs.span.start..rhs.span.end], "{ name = \"x\" }");
    let SpansetExprKind::Filter(Some(cond)) = &rhs.kind else {
        panic!()
    };
    assert_eq!(&src[cond.span.start..cond.span.end], "name = \"x\"");
    let FieldExprKind::Binary { lhs: name, .. } = &cond.kind else {
        panic!()
    };
    assert_eq!(&src[name.span.start..name.span.end], "name");
}

#[test]
fn the_ast_serialises_to_json() {
    let q = parse("{ .a = 1 }").unwrap();
    insta::assert_json_snapshot!(q);
}

//! Properties over generated input: generated ASTs round-trip through `Display`,
//! arbitrary text never panics, and deep input is refused instead of overflowing.

use proptest::prelude::*;
use traceql_parser::{ErrorKind, MAX_NESTING, MAX_TREE_DEPTH, parse, parse_and_validate};

use crate::strategies;

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_queries_round_trip(query in strategies::query()) {
        let printed = query.to_string();
        let parsed = parse(&printed);
        prop_assert!(parsed.is_ok(), "{printed:?} does not parse: {:?}", parsed.err().map(|e| e.render(&printed, false)));
        let parsed = parsed.unwrap();
        prop_assert_eq!(&parsed, &query, "{:?} parses to a different AST", printed);
        prop_assert_eq!(parsed.to_string(), printed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        check_no_panic(&text)?;
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..24)) {
        check_no_panic(&tokens.join(" "))?;
        check_no_panic(&tokens.concat())?;
    }
}

/// Fragments that reach deep into the grammar when glued together at random.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "<",
    ">",
    "(",
    ")",
    ",",
    "|",
    "&&",
    "||",
    "=",
    "!=",
    "=~",
    "!~",
    ">>",
    "<<",
    "~",
    "!>",
    "&>",
    "&~",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "!",
    ".a",
    "span.b",
    "resource.c",
    "parent.d",
    "span:id",
    "trace:",
    "duration",
    "status",
    "name",
    "error",
    "server",
    "nil",
    "true",
    "1",
    "2.5",
    "1s",
    "\"s\"",
    "`r`",
    "count()",
    "avg(",
    "by(",
    "select(",
    "coalesce()",
    "rate()",
    "quantile_over_time(",
    "topk(",
    "compare(",
    "with(",
    "x=1",
    "minInt",
    "/*",
    "*/",
    "//",
    "\"",
    "\\",
    ".\"q",
    "1e",
    "µs",
    "é",
];

/// Parsing either succeeds or fails cleanly; an error renders and points inside the
/// text on a character boundary; what parses also prints and parses back.
fn check_no_panic(text: &str) -> Result<(), TestCaseError> {
    match parse_and_validate(text) {
        Ok(query) => {
            let printed = query.to_string();
            let again = parse(&printed);
            prop_assert!(
                again.is_ok(),
                "{text:?} printed as {printed:?} which does not parse"
            );
            prop_assert_eq!(again.unwrap(), query);
        }
        Err(err) => {
            for label in &err.labels {
                prop_assert!(label.span.start <= label.span.end && label.span.end <= text.len());
                prop_assert!(
                    text.is_char_boundary(label.span.start)
                        && text.is_char_boundary(label.span.end)
                );
            }
            prop_assert!(!err.render(text, false).is_empty());
            if err.kind == ErrorKind::Parse {
                // A parse error is independent of validation.
                prop_assert!(parse(text).is_err());
            }
        }
    }
    Ok(())
}

/// Runs `f` on a thread with a 2 MiB stack, like a test or a small embedding thread.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let thread = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap();
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

fn assert_too_deep(query: String) {
    on_small_stack(move || {
        let err = parse(&query).expect_err("deep input is refused");
        assert_eq!(err.kind, ErrorKind::Parse);
        assert_eq!(err.message, "query nested too deeply");
    });
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let n = 100_000;
    assert_too_deep(format!("{}{{ true }}{}", "(".repeat(n), ")".repeat(n)));
    assert_too_deep(format!("{{ {}.a{} }}", "(".repeat(n), ")".repeat(n)));
    assert_too_deep(format!("{{ {}true }}", "!".repeat(n)));
    assert_too_deep(format!("{{ {}1 = 1 }}", "-".repeat(n)));
    assert_too_deep(format!("{{ 2{} = 1 }}", " ^ 2".repeat(n)));
    assert_too_deep(format!("{{ .a{} }}", " || .a".repeat(n)));
    assert_too_deep(format!("{{ }}{}", " >> { }".repeat(n)));
    assert_too_deep(format!("{{ }}{}", " | { }".repeat(n)));
    assert_too_deep(format!("{}1 + ({{ }} | rate())", "-".repeat(n)));
}

#[test]
fn nesting_up_to_the_limits_works_on_a_small_stack() {
    on_small_stack(|| {
        let depth = MAX_NESTING - 5;
        let query = format!("{{ {}.a = 1{} }}", "(".repeat(depth), ")".repeat(depth));
        let ast = parse_and_validate(&query).expect("deep but within the limit");
        assert_eq!(parse(&ast.to_string()).unwrap(), ast);
        let _ = serde_json::to_string(&ast).unwrap();

        let chain = format!(
            "{{ .a = 0{} }}",
            (1..MAX_TREE_DEPTH - 2)
                .map(|i| format!(" || .a = {i}"))
                .collect::<String>()
        );
        let ast = parse_and_validate(&chain).expect("a long chain of alternatives");
        assert_eq!(parse(&ast.to_string()).unwrap(), ast);
        let _ = serde_json::to_string(&ast).unwrap();
    });
}

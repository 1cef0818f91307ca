//! Fuzzes the parser: any input either parses or fails with a well-formed error; what
//! parses validates without panicking and prints to text that parses back to the same AST.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match traceql_parser::parse(text) {
        Ok(query) => {
            let _ = traceql_parser::validate(&query);
            let printed = query.to_string();
            let again = traceql_parser::parse(&printed)
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again, query, "{text:?} printed as {printed:?} reads back differently");
            assert_eq!(again.to_string(), printed, "printing is not idempotent");
        }
        Err(err) => {
            for label in &err.labels {
                assert!(label.span.start <= label.span.end && label.span.end <= text.len());
                assert!(text.is_char_boundary(label.span.start) && text.is_char_boundary(label.span.end));
            }
            let _ = err.render(text, false);
        }
    }
});

//! A search with a limit reads a few windows of trace starts (newest or oldest first)
//! or of trace durations (slowest first); it must give exactly the first traces of the
//! unlimited search in that order.

use traceql_exec::{Engine, EngineError, EngineOptions, Order, SearchOptions};

use crate::common::repo;

#[tokio::test]
async fn a_limited_search_returns_the_first_traces_of_the_full_search_in_each_order() {
    let engine = Engine::open(repo().join("testdata/demo").to_str().unwrap())
        .await
        .unwrap();
    let queries = [
        "{ }",
        "{ status = error }",
        "{ resource.service.name = \"checkout\" } >> { status = error }",
        "{ kind = server } | count() > 6",
        "{ span.http.status_code >= 500 } || { duration > 80ms }",
    ];
    for order in Order::ALL {
        for query in queries {
            let all = SearchOptions {
                limit: 1_000_000,
                order,
                ..SearchOptions::default()
            };
            let full = engine.search(query, &all).await.unwrap();
            assert_ordered(&full.traces, order, query);
            for limit in [1, 5, 20, 200] {
                let options = SearchOptions {
                    limit,
                    order,
                    ..SearchOptions::default()
                };
                let (limited, stats) = engine.search_with_stats(query, &options).await.unwrap();
                let expected: Vec<_> = full.traces.iter().take(limit).collect();
                let got: Vec<_> = limited.traces.iter().collect();
                assert_eq!(got, expected, "`{query}` with limit {limit}, {order:?}");
                if limit <= 20 && full.traces.len() > 1_000 {
                    assert!(
                        stats.spans_scanned < 42_770 / 2,
                        "`{query}` {order:?} read {} spans",
                        stats.spans_scanned
                    );
                }
            }
        }
    }
}

/// The traces are in `order` (by start, or by duration in whole milliseconds, the
/// precision the result shows).
fn assert_ordered(traces: &[traceql_exec::search::TraceResult], order: Order, query: &str) {
    for pair in traces.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let ok = match order {
            Order::Newest => a.start_time_unix_nano >= b.start_time_unix_nano,
            Order::Oldest => a.start_time_unix_nano <= b.start_time_unix_nano,
            Order::Slowest => a.duration_ms >= b.duration_ms,
        };
        assert!(
            ok,
            "`{query}` {order:?}: {} before {}",
            a.trace_id, b.trace_id
        );
    }
}

/// An engine over the demo store with `options`.
async fn demo_engine(options: EngineOptions) -> Engine {
    let store = traceql_exec::store::open_store(
        repo().join("testdata/demo").to_str().unwrap(),
        false,
        &Default::default(),
    )
    .unwrap();
    Engine::with_options(store, options).await.unwrap()
}

/// The engine's memory limit, or a query's own limit out of a far larger engine's,
/// stops a query that needs more with an error that names the limit; a query that
/// holds little still runs beside it.
#[tokio::test]
async fn the_memory_limit_stops_a_query_with_an_error_that_names_it() {
    let all = SearchOptions {
        limit: 1_000_000,
        ..SearchOptions::default()
    };
    let engine_limit = EngineOptions {
        memory_limit: 32 * 1024,
        ..EngineOptions::default()
    };
    let query_limit = EngineOptions {
        memory_limit: 1 << 30,
        query_memory_limit: Some(32 * 1024),
        ..EngineOptions::default()
    };
    for (options, says) in [
        (engine_limit, "allocate"),
        (query_limit, "own limit of 32.0 KiB"),
    ] {
        let first = demo_engine(options).await;
        // An engine sharing the first one's session (another tenant's, in a server)
        // draws from the same pool, with the same limits.
        let store = traceql_exec::store::open_store(
            repo().join("testdata/demo").to_str().unwrap(),
            false,
            &Default::default(),
        )
        .unwrap();
        let engine = first.sharing(store).await.unwrap();
        assert!(std::sync::Arc::ptr_eq(
            &first.session().runtime_env().memory_pool,
            &engine.session().runtime_env().memory_pool
        ));
        let error = engine.search("{ } | count() > 3", &all).await.unwrap_err();
        match &error {
            EngineError::MemoryLimit { limit, detail } => {
                assert_eq!(*limit, 32 * 1024);
                assert!(detail.contains(says), "{detail}");
            }
            other => panic!("expected the memory limit, got {other}"),
        }
        assert_eq!(error.exit_code(), 1);
        assert!(error.to_string().contains("32.0 KiB"), "{error}");
    }
    let engine = demo_engine(EngineOptions {
        memory_limit: 1 << 30,
        query_memory_limit: Some(32 * 1024),
        ..EngineOptions::default()
    })
    .await;
    let some = engine
        .search("{ status = error }", &SearchOptions::default())
        .await
        .unwrap();
    assert!(!some.traces.is_empty());
    // The default limit runs the same search.
    let engine = Engine::open(repo().join("testdata/demo").to_str().unwrap())
        .await
        .unwrap();
    assert!(engine.search("{ } | count() > 3", &all).await.is_ok());
}

/// A search handed out window by window gives the traces of the search held whole, in
/// the same order, with the same spans shown, however the windows cut it.
#[tokio::test]
async fn a_search_handed_out_in_windows_equals_the_search_held_whole() {
    use traceql_exec::{ParsedQuery, SearchResponse};
    let engine = Engine::open(repo().join("testdata/demo").to_str().unwrap())
        .await
        .unwrap();
    let queries = [
        "{ }",
        "{ status = error } | select(span.http.route)",
        "{ resource.service.name = \"frontend\" } >> { status = error }",
        "{ kind = server } | by(resource.service.name) | count() > 2",
    ];
    for order in Order::ALL {
        for query in queries {
            for limit in [250, 1_000_000] {
                let options = SearchOptions {
                    limit,
                    order,
                    ..SearchOptions::default()
                };
                let whole = engine.search(query, &options).await.unwrap();
                let parsed = ParsedQuery::parse(query).unwrap();
                let mut windows = 0;
                let mut traces = Vec::new();
                let (metrics, _) = engine
                    .search_each_in(&parsed, &options, 100, |results| {
                        windows += 1;
                        traces.extend(results.traces());
                        Ok(())
                    })
                    .await
                    .unwrap();
                let what = format!("`{query}`, limit {limit}, {order:?}");
                let handed = SearchResponse {
                    traces,
                    metrics: whole.metrics.clone(),
                };
                assert_eq!(handed.traces, whole.traces, "{what}");
                // Windows of about 100 matching traces: every trace of `{ }` takes many
                // (its first 250, three); a selective search, at least two.
                let least = match (query, limit) {
                    ("{ }", 250) => 3,
                    ("{ }", _) => 10,
                    _ => 2,
                };
                if order != Order::Slowest {
                    assert!(windows >= least, "{what}: {windows} windows");
                }
                assert!(metrics.inspected_spans > 0, "{what}");
            }
        }
    }
}

/// A search handed out round by round (what a streaming client shows as it comes)
/// gives each trace once, and all of them are the traces of the search held whole, in
/// its order, with the same spans and metrics; a selective search in windows of trace
/// starts takes more than one round.
#[tokio::test]
async fn a_search_handed_out_round_by_round_equals_the_search_held_whole() {
    use traceql_exec::ParsedQuery;
    let engine = Engine::open(repo().join("testdata/demo").to_str().unwrap())
        .await
        .unwrap();
    let queries = [
        "{ }",
        "{ status = error } | select(span.http.route)",
        "{ resource.service.name = \"frontend\" } >> { status = error }",
        "{ span.http.status_code >= 500 } || { duration > 80ms }",
    ];
    let mut several = 0;
    for order in Order::ALL {
        for query in queries {
            for limit in [1, 20, 200] {
                let options = SearchOptions {
                    limit,
                    order,
                    ..SearchOptions::default()
                };
                let whole = engine.search(query, &options).await.unwrap();
                let parsed = ParsedQuery::parse(query).unwrap();
                let mut rounds = Vec::new();
                engine
                    .search_progressive(&parsed, &options, |results, last| {
                        rounds.push((
                            results.traces().collect::<Vec<_>>(),
                            last,
                            results.metrics.clone(),
                        ));
                        Ok(())
                    })
                    .await
                    .unwrap();
                let what = format!("`{query}`, limit {limit}, {order:?}");
                let lasts: Vec<bool> = rounds.iter().map(|(_, last, _)| *last).collect();
                assert_eq!(lasts.iter().filter(|l| **l).count(), 1, "{what}");
                assert_eq!(
                    lasts.last(),
                    Some(&true),
                    "{what}: the last round comes last"
                );
                let traces: Vec<_> = rounds.iter().flat_map(|(t, _, _)| t.clone()).collect();
                assert_eq!(traces, whole.traces, "{what}");
                let (_, _, metrics) = rounds.last().unwrap();
                assert_eq!(
                    metrics.inspected_traces, whole.metrics.inspected_traces,
                    "{what}"
                );
                assert_eq!(metrics.total_blocks, whole.metrics.total_blocks, "{what}");
                for pair in rounds.windows(2) {
                    assert!(
                        pair[0].2.inspected_spans <= pair[1].2.inspected_spans,
                        "{what}"
                    );
                }
                several += usize::from(rounds.len() > 1);
            }
        }
    }
    assert!(
        several > 0,
        "some search of the demo store takes more than one round"
    );
}

/// The memory limit covers the traces a search holds: every match of `{ }` held whole
/// does not fit in a limit that the same search handed out in small windows fits in.
#[tokio::test]
async fn the_memory_limit_covers_the_traces_a_search_holds() {
    use traceql_exec::ParsedQuery;
    let limit = 2 << 20;
    let engine = demo_engine(EngineOptions {
        memory_limit: limit,
        ..EngineOptions::default()
    })
    .await;
    let every = SearchOptions {
        limit: 1_000_000,
        spans_per_spanset: 1_000_000,
        ..SearchOptions::default()
    };
    let parsed = ParsedQuery::parse("{ }").unwrap();
    let Err(error) = engine.search_parsed(&parsed, &every).await else {
        panic!("every span of the demo store held whole fits in {limit} bytes");
    };
    match &error {
        EngineError::MemoryLimit { detail, .. } => {
            assert!(detail.contains("search results"), "{detail}")
        }
        other => panic!("expected the memory limit, got {other}"),
    }
    let mut spans = 0;
    engine
        .search_each_in(&parsed, &every, 200, |results| {
            spans += results
                .traces()
                .map(|t| t.span_sets.iter().map(|s| s.spans.len()).sum::<usize>())
                .sum::<usize>();
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(spans, 42_770, "every span of the demo store");
}

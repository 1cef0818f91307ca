//! Trace insights on hand-built traces: N+1 runs just above and below each threshold,
//! overlapping calls, interleaved siblings, statements that normalise alike, slow
//! queries, and the critical path's time per service.

use traceql_exec::insights::{Insights, InsightsOptions, Thresholds};
use traceql_format::codes::kind;

use crate::common::engine_with;
use crate::services::Traces;

/// `n` sequential sibling database queries under `parent`, each `ms` long, with
/// `statement(i)`; a gap of 1 ms between them.
fn queries(
    t: &mut Traces,
    parent: [u8; 8],
    start: u64,
    n: u64,
    ms: u64,
    statement: impl Fn(u64) -> String,
) {
    for i in 0..n {
        let text = statement(i);
        t.span(
            "shop",
            kind::CLIENT,
            Some(parent),
            start + i * (ms + 1),
            ms,
            false,
            &[("db.system", "postgresql"), ("db.statement", &text)],
        );
    }
}

async fn insights(t: &Traces) -> Insights {
    let engine = engine_with(t.spans.clone()).await;
    engine
        .insights(&InsightsOptions::default())
        .await
        .unwrap()
        .0
}

/// (kind, pattern, count, total ms) of each finding, sorted.
fn found(i: &Insights) -> Vec<(String, String, u64, u64)> {
    let mut out: Vec<_> = i
        .findings
        .iter()
        .map(|f| {
            (
                f.kind.to_string(),
                f.pattern.clone(),
                f.count,
                f.total_ms.round() as u64,
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn n_plus_one_runs_at_their_thresholds() {
    let mut t = Traces::new();
    // 5 queries of 10 ms (50 ms in all): a finding; literals differ, the statement is
    // the same once normalised.
    t.trace();
    let root = t.span("shop", kind::SERVER, None, 0, 500, false, &[]);
    queries(&mut t, root, 1, 5, 10, |i| {
        format!(
            "SELECT * FROM items WHERE id = {} AND tag IN ('a', 'b{i}')",
            40 + i
        )
    });
    // 4 queries of 20 ms: too few. 5 of 9 ms (45 ms): too short.
    t.trace();
    let root = t.span("shop", kind::SERVER, None, 0, 500, false, &[]);
    queries(&mut t, root, 1, 4, 20, |_| "SELECT 1 FROM a".into());
    queries(&mut t, root, 200, 5, 9, |_| "SELECT 2 FROM b".into());
    // 6 queries that overlap (each starts before the previous ends): no run of 5.
    t.trace();
    let root = t.span("shop", kind::SERVER, None, 0, 500, false, &[]);
    for i in 0..6 {
        t.span(
            "shop",
            kind::CLIENT,
            Some(root),
            1 + i * 5,
            20,
            false,
            &[
                ("db.system", "postgresql"),
                ("db.statement", "SELECT x FROM c WHERE k = 1"),
            ],
        );
    }
    // Two statements interleaved, 5 each: two runs. The same statement under another
    // parent is not part of the run.
    t.trace();
    let root = t.span("shop", kind::SERVER, None, 0, 500, false, &[]);
    let other = t.span("shop", kind::INTERNAL, Some(root), 0, 500, false, &[]);
    for i in 0..5 {
        for (k, statement) in [
            "SELECT p FROM prices WHERE sku = 'x'",
            "SELECT q FROM stock WHERE sku = 'x'",
        ]
        .iter()
        .enumerate()
        {
            t.span(
                "shop",
                kind::CLIENT,
                Some(root),
                1 + i * 30 + k as u64 * 15,
                12,
                false,
                &[("db.system", "postgresql"), ("db.statement", statement)],
            );
        }
    }
    t.span(
        "shop",
        kind::CLIENT,
        Some(other),
        400,
        12,
        false,
        &[
            ("db.system", "postgresql"),
            ("db.statement", "SELECT p FROM prices WHERE sku = 'y'"),
        ],
    );
    // Calls: 5 sequential GETs of 60 ms to the same route (300 ms): a finding; 5 of
    // 59 ms: not; a slow query of 500 ms.
    t.trace();
    let root = t.span("web", kind::SERVER, None, 0, 2000, false, &[]);
    for (i, ms) in [60u64, 60, 60, 60, 60].iter().enumerate() {
        let url = format!("https://api/items/{}?v=2", 100 + i);
        t.span(
            "web",
            kind::CLIENT,
            Some(root),
            1 + i as u64 * 61,
            *ms,
            false,
            &[("http.request.method", "GET"), ("url.full", &url)],
        );
    }
    for i in 0..5u64 {
        let url = format!("https://api/users/{i}");
        t.span(
            "web",
            kind::CLIENT,
            Some(root),
            400 + i * 60,
            59,
            false,
            &[("http.method", "GET"), ("http.url", &url)],
        );
    }
    // gRPC calls named by service and method.
    for i in 0..5u64 {
        t.span(
            "web",
            kind::CLIENT,
            Some(root),
            1000 + i * 70,
            70,
            false,
            &[("rpc.service", "CartService"), ("rpc.method", "GetCart")],
        );
    }
    t.span(
        "web",
        kind::CLIENT,
        Some(root),
        800,
        500,
        false,
        &[
            ("db.system", "mysql"),
            ("db.statement", "SELECT * FROM big"),
        ],
    );
    t.span(
        "web",
        kind::CLIENT,
        Some(root),
        1400,
        499,
        false,
        &[
            ("db.system", "mysql"),
            ("db.statement", "SELECT * FROM big2"),
        ],
    );

    let got = insights(&t).await;
    assert_eq!(
        found(&got),
        vec![
            (
                "n_plus_one_calls".into(),
                "CartService/GetCart".into(),
                5,
                350
            ),
            (
                "n_plus_one_calls".into(),
                "GET https://api/items/*?v=*".into(),
                5,
                300
            ),
            (
                "n_plus_one_db".into(),
                "SELECT * FROM items WHERE id = ? AND tag IN (?)".into(),
                5,
                50
            ),
            (
                "n_plus_one_db".into(),
                "SELECT p FROM prices WHERE sku = ?".into(),
                5,
                60
            ),
            (
                "n_plus_one_db".into(),
                "SELECT q FROM stock WHERE sku = ?".into(),
                5,
                60
            ),
            ("slow_db".into(), "SELECT * FROM big".into(), 1, 500),
        ]
    );
    // Groups across traces; parents named.
    let items = got
        .groups
        .iter()
        .find(|g| g.pattern.contains("items WHERE"))
        .unwrap();
    assert_eq!((items.traces, items.occurrences, items.spans), (1, 1, 5));
    assert_eq!(items.parent, "op1");

    // Thresholds are options.
    let engine = engine_with(t.spans.clone()).await;
    let lower = Thresholds {
        min_repeats: 4,
        database_run: 45_000_000,
        ..Thresholds::default()
    };
    let (more, _) = engine
        .insights(&InsightsOptions {
            thresholds: lower,
            ..InsightsOptions::default()
        })
        .await
        .unwrap();
    let patterns: Vec<String> = found(&more).into_iter().map(|f| f.1).collect();
    assert!(
        patterns.contains(&"SELECT ? FROM a".to_string()),
        "{patterns:?}"
    );
    assert!(
        patterns.contains(&"SELECT ? FROM b".to_string()),
        "{patterns:?}"
    );
}

#[tokio::test]
async fn the_critical_path_time_adds_up_to_each_trace() {
    let mut t = Traces::new();
    t.trace();
    let root = t.span("web", kind::SERVER, None, 0, 100, false, &[]);
    let call = t.span("web", kind::CLIENT, Some(root), 10, 60, false, &[]);
    t.span("api", kind::SERVER, Some(call), 15, 50, false, &[]);
    t.trace();
    t.span("web", kind::SERVER, None, 0, 40, false, &[]);
    let got = insights(&t).await;
    let ms = |service: &str| {
        got.critical_path
            .iter()
            .find(|s| s.service == service)
            .map(|s| s.total_ms)
            .unwrap()
    };
    // web: 100 - 60 + 60 - 50 in the first trace, 40 in the second; api: 50.
    assert_eq!((ms("web"), ms("api")), (90.0, 50.0));
    let engine = engine_with(t.spans.clone()).await;
    let one = engine
        .trace_insights("1", Thresholds::default())
        .await
        .unwrap();
    let one = one.expect("trace 1 is stored");
    let total: f64 = one.critical_path.iter().map(|s| s.total_ms).sum();
    assert_eq!(total, 100.0);
    assert!(
        engine
            .trace_insights("ff", Thresholds::default())
            .await
            .unwrap()
            .is_none()
    );
}

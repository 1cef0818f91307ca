//! The same blocks on local disk and on a real S3-compatible server (moto) give the
//! same answers; remote reads are cached, pruned and counted; failures are one line.

use std::time::Duration;

use traceql_exec::store::{Store, StoreErrorKind, StoreOptions};
use traceql_exec::{Engine, EngineError, SearchOptions};
use traceql_format::block::BlockOptions;
use traceql_gen::Generator;
use traceql_testkit::S3TestServer;

use crate::common::write_numbered;

const QUERIES: &[&str] = &[
    "{ }",
    "{ status = error }",
    "{ resource.service.name = \"checkout\" } >> { status = error }",
    "{ kind = server } && { span.http.status_code >= 500 }",
    "{ span.http.route =~ \"/product/.*\" } | select(span.http.method)",
    "{ kind = server } | avg(duration) > 20ms",
    "{ } | by(resource.service.name) | count() > 3",
    "{ name = \"no-such-operation\" }",
];

/// Store options that reach `server` with its test credentials.
fn options(server: &S3TestServer) -> StoreOptions {
    StoreOptions {
        timeout: Duration::from_secs(10),
        ..StoreOptions::s3_compatible(server.endpoint(), server.credentials())
    }
}

/// Writes the same generated traces, in the same blocks, to each store.
async fn fill(stores: &[&Store]) {
    let mut generator = Generator::new(11, 1_700_000_000_000_000_000, 50_000_000);
    let traces: Vec<_> = (0..600).map(|_| generator.next_trace()).collect();
    let options = BlockOptions {
        spans_per_block: 2_000,
        ..BlockOptions::default()
    };
    for store in stores {
        write_numbered(store, traces.clone(), &options).await;
    }
}

/// A new bucket of `server` holding the generated blocks under `prefix`.
async fn filled_bucket(server: &S3TestServer, bucket: &str, prefix: &str) -> Store {
    server.create_bucket(bucket).unwrap();
    let s3 = Store::remote(&format!("s3://{bucket}/{prefix}"), &options(server)).unwrap();
    fill(&[&s3]).await;
    s3
}

fn local_store(name: &str) -> Store {
    let dir = std::env::temp_dir().join(format!("traceql-s3-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Store::local(&dir, true).expect("local store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_and_local_disk_give_identical_results() {
    let server = S3TestServer::start().expect("moto server");
    server.create_bucket("traces").unwrap();
    let s3 = Store::remote("s3://traces/prod/eu", &options(&server)).unwrap();
    let local = local_store("parity");
    fill(&[&local, &s3]).await;

    let local_blocks = local.list_blocks().await.unwrap();
    let s3_blocks = s3.list_blocks().await.unwrap();
    assert!(local_blocks.len() > 2, "several blocks");
    assert_eq!(s3_blocks, local_blocks);

    let local = Engine::with_store(local).await.unwrap();
    let remote = Engine::with_store(s3.clone()).await.unwrap();
    for query in QUERIES {
        for options in [
            SearchOptions::default(),
            SearchOptions {
                limit: 100_000,
                spans_per_spanset: 1_000,
                ..SearchOptions::default()
            },
        ] {
            let want = local.search(query, &options).await.unwrap();
            let (got, stats) = remote.search_with_stats(query, &options).await.unwrap();
            assert_eq!(got.traces, want.traces, "`{query}`");
            if !got.traces.is_empty() {
                assert!(stats.io.requests > 0 && stats.io.bytes_fetched > 0);
            }
        }
    }
    let newest = local
        .search("{ status = error }", &SearchOptions::default())
        .await
        .unwrap();
    let id = &newest.traces[0].trace_id;
    assert_eq!(
        remote.trace(id).await.unwrap(),
        local.trace(id).await.unwrap()
    );
    // The service graph and the insights too, over the blocks in several parts.
    let options = traceql_exec::services::ServicesOptions::default();
    let graph = remote.services(&options).await.unwrap().0;
    assert!(!graph.edges.is_empty());
    assert_eq!(graph, local.services(&options).await.unwrap().0);
    let options = traceql_exec::insights::InsightsOptions::default();
    let insights = remote.insights(&options).await.unwrap().0;
    assert!(!insights.critical_path.is_empty());
    assert_eq!(insights, local.insights(&options).await.unwrap().0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_reads_are_cached_pruned_and_counted() {
    let server = S3TestServer::start().expect("moto server");
    let s3 = filled_bucket(&server, "cache", "t").await;
    let engine = Engine::with_store(s3.clone()).await.unwrap();
    let all = SearchOptions {
        limit: 100_000,
        ..SearchOptions::default()
    };
    let query = "{ status = error }";
    let (_, first) = engine.search_with_stats(query, &all).await.unwrap();
    let (_, second) = engine.search_with_stats(query, &all).await.unwrap();
    // The first search reads each block's footer and page index; the second finds them
    // in the engine's cache and asks only for data pages.
    assert!(
        second.io.requests < first.io.requests,
        "first {:?}, second {:?}",
        first.io,
        second.io
    );
    assert!(second.io.bytes_fetched < first.io.bytes_fetched);

    // A lookup by trace id reads little: bloom filters and statistics prune row groups
    // before any data is requested.
    let all_bytes: u64 = engine.blocks().map(|b| b.bytes).sum();
    let id = engine
        .search(query, &SearchOptions::default())
        .await
        .unwrap()
        .traces[0]
        .trace_id
        .clone();
    let before = s3.io();
    let spans = engine.trace(&id).await.unwrap();
    let lookup = s3.io().since(before);
    assert!(!spans.is_empty());
    assert!(
        lookup.bytes_fetched * 4 < all_bytes,
        "a trace lookup fetched {} of {all_bytes} bytes",
        lookup.bytes_fetched
    );
}

/// Runs `f`, which must fail with a store error of `kind`, and returns its message.
/// Retries are bounded, so it ends; the timeout only keeps a regression from hanging
/// the suite.
async fn fails<F: Future<Output = Result<Engine, EngineError>>>(
    kind: StoreErrorKind,
    f: F,
) -> String {
    let result = tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("no hang");
    let error = match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    };
    assert_eq!(error.exit_code(), 1, "{error}");
    match &error {
        EngineError::Store(e) => assert_eq!(e.kind, kind, "{e}"),
        other => panic!("expected a store error, got {other}"),
    }
    let message = error.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(message.len() < 300, "short: {message}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_failures_are_one_line() {
    let server = S3TestServer::start().expect("moto server");
    let open = |location: &str, options: StoreOptions| {
        let location = location.to_string();
        async move {
            let store = traceql_exec::store::open_store(&location, false, &options)?;
            Engine::with_store(store).await
        }
    };

    let missing = fails(
        StoreErrorKind::NotFound,
        open("s3://no-such-bucket/x", options(&server)),
    )
    .await;
    assert!(missing.contains("bucket does not exist"), "{missing}");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        StoreOptions {
            s3_endpoint: Some(format!("http://127.0.0.1:{port}")),
            ..options(&server)
        }
    };
    let refused = fails(StoreErrorKind::Unreachable, open("s3://traces/x", closed)).await;
    assert!(refused.contains("cannot reach the endpoint"), "{refused}");
    assert!(refused.contains("connection refused"), "{refused}");
    assert!(
        refused.contains("after 3 retries"),
        "retries are bounded: {refused}"
    );

    let checking = S3TestServer::start_checking_credentials().expect("moto server");
    let denied = fails(
        StoreErrorKind::AccessDenied,
        open(
            "s3://traces/x",
            StoreOptions {
                s3_endpoint: Some(checking.endpoint()),
                ..options(&server)
            },
        ),
    )
    .await;
    assert!(denied.contains("access denied"), "{denied}");
    assert!(denied.contains("InvalidAccessKeyId"), "{denied}");

    let no_bucket = fails(
        StoreErrorKind::InvalidLocation,
        open("s3:///x", options(&server)),
    )
    .await;
    assert!(no_bucket.contains("names no bucket"), "{no_bucket}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_corrupt_objects_are_named() {
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};

    let server = S3TestServer::start().expect("moto server");
    let s3 = filled_bucket(&server, "broken", "p").await;
    let blocks = s3.list_blocks().await.unwrap();
    let objects = s3.object_store();
    let data = |id: &str| Path::from(format!("p/single-tenant/{id}/data.parquet"));
    objects.delete(&data(&blocks[0].id)).await.unwrap();
    objects
        .put(
            &data(&blocks[1].id),
            PutPayload::from_static(b"this is not parquet"),
        )
        .await
        .unwrap();
    let engine = Engine::with_store(s3.clone()).await.unwrap();
    let all = SearchOptions {
        limit: 100_000,
        ..SearchOptions::default()
    };
    let error = engine.search("{ }", &all).await.unwrap_err();
    let message = error.to_string();
    assert_eq!(error.exit_code(), 1);
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.contains(&blocks[0].id) || message.contains(&blocks[1].id),
        "names the block: {message}"
    );

    objects
        .put(
            &Path::from(format!("p/single-tenant/{}/meta.json", blocks[2].id)),
            PutPayload::from_static(b"{ not json"),
        )
        .await
        .unwrap();
    let error = s3.list_blocks().await.unwrap_err();
    assert_eq!(error.kind, StoreErrorKind::Corrupt);
    let error = error.to_string();
    assert!(error.contains("invalid meta.json"), "{error}");
    assert!(error.contains(&blocks[2].id), "{error}");
}

/// Uploads the files under `dir` to `store`'s bucket, under its root `prefix`.
async fn upload_tree(store: &Store, prefix: &str, dir: &std::path::Path, rel: &str) {
    use object_store::ObjectStoreExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let rel = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if path.is_dir() {
            Box::pin(upload_tree(store, prefix, &path, &rel)).await;
        } else {
            let key = object_store::path::Path::from(format!("{prefix}/{rel}"));
            store
                .object_store()
                .put(&key, std::fs::read(&path).unwrap().into())
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tempo_bucket_on_s3_answers_as_on_local_disk() {
    let dir = traceql_testkit::require_shared!(dir("tempo-blocks"));
    let tree = dir.join("vparquet5");
    let server = S3TestServer::start().expect("moto server");
    server.create_bucket("tempo").unwrap();
    let s3 = Store::remote("s3://tempo/traces", &options(&server)).unwrap();
    upload_tree(&s3, "traces", &tree, "").await;

    let local = Engine::open(tree.to_str().unwrap()).await.unwrap();
    let remote = Engine::with_store(s3).await.unwrap();
    assert_eq!(
        remote.blocks().collect::<Vec<_>>(),
        local.blocks().collect::<Vec<_>>()
    );
    let all = SearchOptions {
        limit: 100_000,
        spans_per_spanset: 1_000,
        ..SearchOptions::default()
    };
    for query in [
        "{ resource.service.name = \"payment\" && status = error }",
        "{ event.exception.type = \"TimeoutError\" }",
        "{ .http.status_code >= 500 } >> { name = \"db.query\" }",
        "{ } | count() > 19",
    ] {
        let want = local.search(query, &all).await.unwrap();
        let (got, stats) = remote.search_with_stats(query, &all).await.unwrap();
        assert!(!want.traces.is_empty(), "`{query}` matches");
        assert_eq!(got.traces, want.traces, "`{query}`");
        assert!(stats.io.requests > 0 && stats.io.bytes_fetched > 0);
    }
    let id = "0e03a4fb3e706945ff97fd660bdf0a29";
    assert_eq!(
        remote.trace(id).await.unwrap(),
        local.trace(id).await.unwrap()
    );
}

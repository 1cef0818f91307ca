//! `traceql serve` over HTTP on 127.0.0.1: every endpoint against the engine's own
//! answers on the bundled demo store, and against Grafana Tempo's recorded exchanges
//! (`shared/tempo-blocks/api/`) on Tempo's own vParquet5 block.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use traceql_exec::metrics::MetricsOptions;
use traceql_exec::store::Store;
use traceql_exec::{Engine, EngineOptions, SearchOptions};
use traceql_server::Tenants;

#[path = "api/grpc.rs"]
mod grpc;

/// A server on a free loopback port, stopped when dropped.
struct Server {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    engine: Arc<Engine>,
}

impl Server {
    async fn start(store: &Path) -> Server {
        Server::start_with(store, traceql_server::Limits::default()).await
    }

    async fn start_with(store: &Path, limits: traceql_server::Limits) -> Server {
        Server::start_with_options(store, limits, EngineOptions::default()).await
    }

    async fn start_with_options(
        store: &Path,
        limits: traceql_server::Limits,
        options: EngineOptions,
    ) -> Server {
        Server::start_on(Store::local(store, false).unwrap(), limits, options).await
    }

    async fn start_on(
        store: Store,
        limits: traceql_server::Limits,
        options: EngineOptions,
    ) -> Server {
        let engine = Arc::new(Engine::with_options(store.clone(), options).await.unwrap());
        let tenants = Arc::new(Tenants::new(
            store,
            Arc::clone(&engine),
            Duration::from_millis(100),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(traceql_server::serve(listener, tenants, limits, async {
            let _ = stopped.await;
        }));
        Server {
            address,
            stop: Some(stop),
            engine,
        }
    }

    /// `GET path` with an optional `Accept` header: status, content type, body.
    async fn get(&self, path: &str, accept: Option<&str>) -> Reply {
        let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
        self.get_with(path, &accept).await
    }

    /// `GET path` with `headers` (each line ending in CRLF).
    async fn get_with(&self, path: &str, headers: &str) -> Reply {
        let exchange = async {
            let mut stream = TcpStream::connect(self.address).await.unwrap();
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.unwrap();
            Reply::parse(&raw)
        };
        tokio::time::timeout(Duration::from_secs(60), exchange)
            .await
            .unwrap_or_else(|_| panic!("GET {path} took over a minute"))
    }

    async fn json(&self, path: &str) -> Value {
        let reply = self.get(path, None).await;
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.text());
        assert_eq!(reply.content_type, "application/json", "GET {path}");
        serde_json::from_slice(&reply.body).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP response.
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let header = |name: &str| {
            head.lines()
                .skip(1)
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let mut body = raw[end + 4..].to_vec();
        if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
            body = dechunk(&body);
        }
        Reply {
            status,
            content_type: header("content-type"),
            body,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line + 2..line + 2 + size]);
        body = &body[line + 4 + size..];
    }
}

/// `text` escaped for a URL's query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The spans of a `Trace` or `TraceByIDResponse` body (v2 wraps the trace in field 1).
fn spans_in(body: &[u8], v2: bool) -> usize {
    let trace = if v2 {
        assert_eq!(body[0], 0x0a, "field 1, the trace, comes first");
        let mut rest = &body[1..];
        let len = prost::encoding::decode_varint(&mut rest).unwrap() as usize;
        &rest[..len]
    } else {
        body
    };
    ExportTraceServiceRequest::decode(trace)
        .unwrap()
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

fn demo() -> std::path::PathBuf {
    traceql_testkit::shared::workspace_root().join("testdata/demo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_as_the_engine_does_on_the_demo_store() {
    let server = Server::start(&demo()).await;
    let engine = Arc::clone(&server.engine);

    let echo = server.get("/api/echo", None).await;
    assert_eq!((echo.status, echo.text().as_str()), (200, "echo\n"));
    assert_eq!(echo.content_type, "text/plain; charset=utf-8");
    assert_eq!(server.get("/ready", None).await.status, 200);
    let info = server.json("/api/status/buildinfo").await;
    assert!(info["version"].as_str().unwrap().starts_with("traceql-"));
    let missing = server.get("/api/nope", None).await;
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "404 page not found\n")
    );

    // Search: the engine's traces, in Tempo's shape.
    let q = r#"{ resource.service.name = "checkout" } >> { status = error }"#;
    let options = SearchOptions {
        limit: 7,
        spans_per_spanset: 2,
        ..SearchOptions::default()
    };
    let want = engine.search(q, &options).await.unwrap();
    let got = server
        .json(&format!("/api/search?q={}&limit=7&spss=2", encode(q)))
        .await;
    let traces = got["traces"].as_array().unwrap();
    assert_eq!(traces.len(), want.traces.len());
    assert!(!traces.is_empty());
    for (t, w) in traces.iter().zip(&want.traces) {
        assert_eq!(t["traceID"], w.trace_id);
        assert_eq!(
            t["spanSet"], t["spanSets"][0],
            "spanSet is the first spanset"
        );
        assert_eq!(t["spanSets"], serde_json::to_value(&w.span_sets).unwrap());
        assert!(t["startTimeUnixNano"].is_string());
    }
    for key in ["inspectedBytes", "totalBlocks"] {
        assert!(got["metrics"].get(key).is_some(), "metrics.{key}");
    }
    // Form encoding: `+` is a space.
    let plus = server
        .json("/api/search?q={+status+=+error+}&limit=3")
        .await;
    assert_eq!(plus["traces"].as_array().unwrap().len(), 3);
    // Legacy search: no spansets.
    let legacy = server
        .json("/api/search?tags=service.name%3Dcheckout&minDuration=1ms&limit=2")
        .await;
    let first = &legacy["traces"][0];
    assert!(first["traceID"].is_string() && first.get("spanSets").is_none());

    // Bad requests are 400s with the reason, never 500s.
    for (path, says) in [
        (
            "/api/search?q=%7B+%7D&limit=0",
            "invalid limit: must be a positive number",
        ),
        (
            "/api/search?q=%7B+span.foo+%3D+%7D",
            "invalid TraceQL query",
        ),
        (
            "/api/search?q=%7B+%7D&start=20&end=10",
            "start must be before end",
        ),
        ("/api/search?q=%7B+%7D&tags=a%3Db", "cannot both be given"),
        ("/api/search?q=%7B+parent.x+%3D+1+%7D", "not supported yet"),
        (
            "/api/v2/traces/xyz-not-hex",
            "invalid character 'x' at position 1",
        ),
        (
            "/api/metrics/query_range?q=%7B+status+%3D+error+%7D",
            "not a metrics query",
        ),
        (
            "/api/metrics/query_range?q=%7B+%7D+%7C+rate%28",
            "invalid TraceQL query",
        ),
        (
            "/api/metrics/query_range?q=%7B+%7D+%7C+rate%28%29&step=soon",
            "invalid step",
        ),
        ("/api/v2/search/tag/%7B/values", "invalid tag"),
        ("/api/v2/search/tags?scope=nowhere", "invalid scope"),
    ] {
        let reply = server.get(path, None).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        assert!(reply.text().contains(says), "{path}: {}", reply.text());
        assert_eq!(reply.content_type, "text/plain; charset=utf-8");
    }

    // Trace by id: protobuf in both versions, JSON, and Tempo's not-found answers.
    let id = want.traces[0].trace_id.clone();
    let spans = engine.trace(&id).await.unwrap().len();
    let v2 = server
        .get(
            &format!("/api/v2/traces/{id}"),
            Some("application/protobuf"),
        )
        .await;
    assert_eq!(
        (v2.status, v2.content_type.as_str()),
        (200, "application/protobuf")
    );
    assert_eq!(spans_in(&v2.body, true), spans);
    let v1 = server
        .get(&format!("/api/traces/{id}"), Some("application/protobuf"))
        .await;
    assert_eq!(spans_in(&v1.body, false), spans);
    let json = server.json(&format!("/api/v2/traces/{id}")).await;
    let first_span = &json["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert!(
        first_span["kind"]
            .as_str()
            .unwrap()
            .starts_with("SPAN_KIND_")
    );
    assert_eq!(
        first_span["traceId"].as_str().unwrap().len(),
        24,
        "base64 of 16 bytes"
    );
    let unknown = "0123456789abcdef0123456789abcdef";
    let none = server
        .get(
            &format!("/api/v2/traces/{unknown}"),
            Some("application/protobuf"),
        )
        .await;
    assert_eq!(
        (none.status, none.body.as_slice()),
        (200, &[0x0a, 0x00, 0x12, 0x00][..])
    );
    assert_eq!(
        server.json(&format!("/api/v2/traces/{unknown}")).await,
        serde_json::json!({ "trace": {}, "metrics": {} })
    );
    let gone = server
        .get(
            &format!("/api/traces/{unknown}"),
            Some("application/protobuf"),
        )
        .await;
    assert_eq!((gone.status, gone.body.len()), (404, 0));

    // Tags: the store's attributes by scope, and the intrinsics.
    let tags = server.json("/api/v2/search/tags").await;
    let scope = |name: &str| -> BTreeSet<String> {
        tags["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| {
                s["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let names: BTreeSet<String> = engine.attribute_names().into_iter().collect();
    for key in scope("resource") {
        assert!(names.contains(&format!("resource.{key}")), "{key}");
    }
    assert!(scope("resource").contains("service.name"));
    assert!(scope("intrinsic").contains("duration") && scope("intrinsic").contains("span:id"));
    let v1 = server.json("/api/search/tags").await;
    assert!(
        v1["tagNames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "service.name")
    );

    // Tag values: every service, typed; narrowed by `q` as the search narrows.
    let services = server
        .json("/api/v2/search/tag/resource.service.name/values")
        .await;
    let got: BTreeSet<String> = services["tagValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["type"], "string");
            v["value"].as_str().unwrap().to_string()
        })
        .collect();
    let known: BTreeSet<String> = engine
        .known_values("resource.service.name")
        .into_iter()
        .collect();
    assert_eq!(got, known);
    let narrowed = server
        .json(&format!(
            "/api/v2/search/tag/resource.service.name/values?q={}",
            encode(r#"{ resource.service.name = "checkout" }"#)
        ))
        .await;
    assert_eq!(
        narrowed["tagValues"],
        serde_json::json!([{ "type": "string", "value": "checkout" }])
    );
    let status = server.json("/api/v2/search/tag/status/values").await;
    assert!(
        status["tagValues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["type"] == "keyword")
    );
    let codes = server
        .json("/api/v2/search/tag/span.http.status_code/values?limit=2")
        .await;
    let codes = codes["tagValues"].as_array().unwrap();
    assert_eq!(codes.len(), 2);
    assert!(codes.iter().all(|v| v["type"] == "int"));
    let v1 = server.json("/api/search/tag/service.name/values").await;
    assert!(
        v1["tagValues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "checkout")
    );

    // Metrics: the engine's series, in Tempo's range and instant shapes.
    let mq = "{ } | rate() by (resource.service.name)";
    let (want, _) = engine
        .metrics(mq, &MetricsOptions::default())
        .await
        .unwrap();
    let got = server
        .json(&format!("/api/metrics/query_range?q={}", encode(mq)))
        .await;
    // Both sides through the same JSON parser (its float parsing is not exact).
    let want: Value = serde_json::from_str(&serde_json::to_string(&want).unwrap()).unwrap();
    assert_eq!(got["series"], want["series"]);
    let instant = server
        .json(&format!("/api/metrics/query?q={}", encode(mq)))
        .await;
    let series = instant["series"].as_array().unwrap();
    assert_eq!(series.len(), want["series"].as_array().unwrap().len());
    assert!(
        series
            .iter()
            .all(|s| s["value"].is_number() && s["labels"][0]["key"] == "resource.service.name")
    );

    // /metrics counts what was asked, by route pattern, and what queries read.
    let metrics = server.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for line in [
        "traceql_requests_total{route=\"/api/search\",status=\"200\"}",
        "traceql_requests_total{route=\"/api/search\",status=\"400\"}",
        "traceql_requests_total{route=\"/api/v2/traces/{id}\",status=\"200\"}",
        "traceql_request_duration_seconds_bucket{route=\"/api/echo\",le=\"+Inf\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from {text}");
    }
    for counter in [
        "traceql_scanned_bytes_total ",
        "traceql_query_planning_seconds_total ",
        "traceql_query_execution_seconds_total ",
    ] {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(counter))
            .unwrap_or_else(|| panic!("{counter}missing from {text}"));
        assert!(value.parse::<f64>().unwrap() > 0.0, "{counter}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_time_is_stopped_with_a_504_while_health_checks_answer() {
    let limits = traceql_server::Limits {
        max_queries: 1,
        timeout: Duration::from_millis(1),
    };
    let server = Server::start_with(&demo(), limits).await;
    let heavy = format!(
        "/api/search?q={}&limit=100000&spss=100000",
        encode("{ } >> { }")
    );
    let reply = server.get(&heavy, None).await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert!(reply.text().contains("--query-timeout"), "{}", reply.text());
    // Health checks take no turn and have no time limit.
    assert_eq!(server.get("/api/echo", None).await.status, 200);
    // The stopped query gave its turn back: the next one runs (and is stopped too).
    assert_eq!(server.get(&heavy, None).await.status, 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_scope_orgid_picks_the_tenant_and_an_unknown_one_answers_empty() {
    // A store with two tenants: the demo's blocks under `single-tenant` and `team-a`.
    let root = std::env::temp_dir().join(format!("traceql-tenants-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for tenant in ["single-tenant", "team-a"] {
        copy_dir(&demo().join("single-tenant"), &root.join(tenant));
    }
    let server = Server::start(&root).await;
    let path = format!("/api/search?q={}&limit=3", encode("{ status = error }"));
    let default = server.get(&path, None).await;
    let team = server.get_with(&path, "X-Scope-OrgID: team-a\r\n").await;
    assert_eq!((default.status, team.status), (200, 200));
    assert_eq!(
        default.body, team.body,
        "the same blocks under both tenants"
    );
    let unknown = server.get_with(&path, "X-Scope-OrgID: nobody\r\n").await;
    assert_eq!(unknown.status, 200, "{}", unknown.text());
    let json: Value = serde_json::from_slice(&unknown.body).unwrap();
    assert_eq!(json["traces"], serde_json::json!([]));
    for bad in ["..", "a/b", "tenant with spaces"] {
        let reply = server
            .get_with(&path, &format!("X-Scope-OrgID: {bad}\r\n"))
            .await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
    }
    let echo = server.get_with("/api/echo", "X-Scope-OrgID: ..\r\n").await;
    assert_eq!(echo.status, 200, "health checks read no tenant");
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_written_while_serving_are_searched_within_the_refresh() {
    // The tenant starts without blocks; the demo's appear at once (a directory
    // renamed into place), as a store's new blocks do.
    let root = std::env::temp_dir().join(format!("traceql-refresh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let server = Server::start(&root).await;
    let path = format!("/api/search?q={}&limit=3", encode("{ status = error }"));
    let before: Value = serde_json::from_slice(&server.get(&path, None).await.body).unwrap();
    assert_eq!(before["traces"], serde_json::json!([]));
    copy_dir(&demo().join("single-tenant"), &root.join("staging"));
    std::fs::rename(root.join("staging"), root.join("single-tenant")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let after: Value = serde_json::from_slice(&server.get(&path, None).await.body).unwrap();
        if after["traces"].as_array().is_some_and(|t| t.len() == 3) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new blocks not searched: {after}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_beyond_the_limit_wait_their_turn_and_all_answer() {
    let limits = traceql_server::Limits {
        max_queries: 1,
        timeout: Duration::from_secs(60),
    };
    let server = Arc::new(Server::start_with(&demo(), limits).await);
    let path = format!("/api/search?q={}&limit=5", encode("{ status = error }"));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (server, path) = (Arc::clone(&server), path.clone());
            tokio::spawn(async move { server.get(&path, None).await })
        })
        .collect();
    let mut bodies = BTreeSet::new();
    for client in clients {
        let reply = client.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        bodies.insert(reply.body);
    }
    assert_eq!(bodies.len(), 1, "every client got the same answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_answer_while_queued_heavy_searches_run_and_none_fails() {
    // One turn and eight heavy searches queued behind each other: the health check
    // takes no turn, so it answers before the last of them.
    let limits = traceql_server::Limits {
        max_queries: 1,
        timeout: Duration::from_secs(120),
    };
    let server = Arc::new(Server::start_with(&demo(), limits).await);
    let heavy = format!(
        "/api/search?q={}&limit=100000&spss=100",
        encode("{ } >> { }")
    );
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let searches: Vec<_> = (0..8)
        .map(|_| {
            let (server, heavy, finished) =
                (Arc::clone(&server), heavy.clone(), Arc::clone(&finished));
            tokio::spawn(async move {
                let reply = server.get(&heavy, None).await;
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                reply.status
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let echo = server.get("/api/echo", None).await;
    let done_at_echo = finished.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(echo.status, 200);
    assert!(done_at_echo < 8, "echo waited for the queued searches");
    for search in searches {
        assert_eq!(search.await.unwrap(), 200, "a queued search failed");
    }
}

/// The demo store's blocks copied into a bucket of an S3-compatible server (moto on
/// loopback) are served as from disk: the same searches, traces, tag values and metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_in_an_s3_bucket_are_served_as_from_disk() {
    use traceql_exec::store::StoreOptions;
    let moto = traceql_testkit::S3TestServer::start().expect("moto server");
    moto.create_bucket("tempo").unwrap();
    let options = StoreOptions {
        timeout: Duration::from_secs(10),
        ..StoreOptions::s3_compatible(moto.endpoint(), moto.credentials())
    };
    let s3 = Store::remote("s3://tempo/traces", &options).unwrap();
    let local = Store::local(&demo(), false).unwrap();
    for block in local.list_blocks().await.unwrap() {
        let data = s3.data_path(&block.id);
        let dir = data.as_ref().rsplit_once('/').unwrap().0.to_string();
        // The data first: a block is listed once its meta.json is there.
        for file in ["data.parquet", "meta.json"] {
            let bytes = local.read_block_file(&block.id, file).await.unwrap();
            let path = object_store::path::Path::from(format!("{dir}/{file}"));
            object_store::ObjectStoreExt::put(&s3.object_store(), &path, bytes.into())
                .await
                .unwrap();
        }
    }
    let limits = traceql_server::Limits::default();
    let remote = Server::start_on(s3, limits, EngineOptions::default()).await;
    let disk = Server::start(&demo()).await;
    let q = encode(r#"{ resource.service.name = "checkout" } >> { status = error }"#);
    let paths = [
        format!("/api/search?q={q}&limit=7&spss=2"),
        "/api/v2/search/tags".to_string(),
        format!("/api/v2/search/tag/span.http.status_code/values?q={q}"),
        format!(
            "/api/metrics/query_range?q={}&step=60",
            encode("{ } | rate() by (resource.service.name)")
        ),
    ];
    for path in &paths {
        let (mut ours, mut theirs) = (remote.json(path).await, disk.json(path).await);
        // What was read differs (the remote store counts its requests' bytes).
        for answer in [&mut ours, &mut theirs] {
            if let Some(map) = answer.as_object_mut() {
                map.remove("metrics");
            }
        }
        assert_eq!(ours, theirs, "GET {path}");
    }
    let found = disk.json(&paths[0]).await;
    let id = found["traces"][0]["traceID"].as_str().unwrap();
    let path = format!("/api/v2/traces/{id}");
    let (a, b) = (
        remote.get(&path, Some("application/protobuf")).await,
        disk.get(&path, Some("application/protobuf")).await,
    );
    assert_eq!(
        (a.status, spans_in(&a.body, true)),
        (200, spans_in(&b.body, true))
    );
    assert!(spans_in(&a.body, true) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_own_memory_limit_fails_alone_with_a_422() {
    let options = EngineOptions {
        query_memory_limit: Some(32 * 1024),
        ..EngineOptions::default()
    };
    let server =
        Server::start_with_options(&demo(), traceql_server::Limits::default(), options).await;
    let heavy = format!("/api/search?q={}&limit=100000", encode("{ } | count() > 3"));
    let light = format!("/api/search?q={}&limit=5", encode("{ status = error }"));
    let (heavy, light) = tokio::join!(server.get(&heavy, None), server.get(&light, None));
    assert_eq!(heavy.status, 422, "{}", heavy.text());
    assert!(heavy.text().contains("32.0 KiB"), "{}", heavy.text());
    assert_eq!(light.status, 200, "{}", light.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_stops_its_query() {
    let limits = traceql_server::Limits {
        max_queries: 1,
        timeout: Duration::from_secs(120),
    };
    let server = Server::start_with(&demo(), limits).await;
    let heavy = format!(
        "/api/search?q={}&limit=100000&spss=100",
        encode("{ } >> { }")
    );
    // A asks, and hangs up while its query runs.
    let mut a = TcpStream::connect(server.address).await.unwrap();
    let request = format!("GET {heavy} HTTP/1.1\r\nHost: test\r\n\r\n");
    a.write_all(request.as_bytes()).await.unwrap();
    // Long enough for the server to read the request, far shorter than the search.
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(a);
    // B asks the same after it: with one turn, B runs after A is done or stopped.
    let b = server.get(&heavy, None).await;
    assert_eq!(b.status, 200);
    let metrics = server.get("/metrics", None).await.text();
    let searches = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("traceql_requests_total{route=\"/api/search\",status=\"200\"} ")
        })
        .unwrap_or_else(|| panic!("no search counted: {metrics}"));
    assert_eq!(searches, "1", "A's query ran to the end after A hung up");
}

/// The recorded exchanges this server is held to: Tempo's GETs on its query port,
/// except those that depend on Tempo's live store (recent data, posted spans).
fn recorded(index: &Value) -> Vec<(String, String, Option<String>, u16)> {
    index
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["method"] == "GET" && e["url"].as_str().unwrap().contains(":3200/"))
        .filter(|e| {
            let file = e["file"].as_str().unwrap();
            !file.contains("no-range") && !file.contains("probe")
        })
        .map(|e| {
            let url = e["url"].as_str().unwrap();
            let path = url.split_once(":3200").unwrap().1.to_string();
            let accept = e["req_headers"]["Accept"].as_str().map(str::to_string);
            (
                e["file"].as_str().unwrap().to_string(),
                path,
                accept,
                e["status"].as_u64().unwrap() as u16,
            )
        })
        .collect()
}

/// The field names that `tempo.proto` declares (`string spanID = 1;` gives `spanID`).
fn proto_field_names(proto: &str) -> BTreeSet<&str> {
    proto
        .lines()
        .filter_map(|line| {
            let (decl, _) = line.split_once('=')?;
            let words: Vec<&str> = decl.split_whitespace().collect();
            let comment = line.trim_start().starts_with("//");
            (words.len() >= 2 && !comment).then(|| words[words.len() - 1])
        })
        .collect()
}

/// The keys of every object in `v`, as paths (`traces[].spanSets[].matched`).
fn key_paths(v: &Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = format!("{at}.{k}");
                out.insert(path.clone());
                key_paths(child, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempos_recorded_exchanges_get_the_same_statuses_shapes_and_traces() {
    let Some(dir) = traceql_testkit::shared_dir("tempo-blocks") else {
        return;
    };
    let api = dir.join("api");
    let index: Value =
        serde_json::from_slice(&std::fs::read(api.join("index.json")).unwrap()).unwrap();
    let proto = std::fs::read_to_string(dir.join("proto/tempo.proto")).unwrap();
    let proto_fields = proto_field_names(&proto);
    let server = Server::start(&dir.join("vparquet5")).await;
    let exchanges = recorded(&index);
    assert!(exchanges.len() > 40, "{} recorded GETs", exchanges.len());
    for (file, path, accept, status) in exchanges {
        let reply = server.get(&path, accept.as_deref()).await;
        assert_eq!(reply.status, status, "{file}: GET {path}: {}", reply.text());
        let recorded = std::fs::read(api.join(&file)).unwrap();
        if file.ends_with(".pb") {
            assert_eq!(reply.content_type, "application/protobuf", "{file}");
            let v2 = path.starts_with("/api/v2/");
            assert_eq!(
                spans_in(&reply.body, v2),
                spans_in(&recorded, v2),
                "{file}: the same trace"
            );
            continue;
        }
        if !file.ends_with(".json") || status != 200 {
            continue;
        }
        let ours: Value = serde_json::from_slice(&reply.body).unwrap();
        let theirs: Value = serde_json::from_slice(&recorded).unwrap();
        // Every field we send is one Tempo sends in that answer, or one its protobuf
        // messages declare (Grafana parses some answers strictly, by those messages).
        let (mut ours_keys, mut theirs_keys) = (BTreeSet::new(), BTreeSet::new());
        key_paths(&ours, "", &mut ours_keys);
        key_paths(&theirs, "", &mut theirs_keys);
        let extra: Vec<&String> = ours_keys
            .difference(&theirs_keys)
            .filter(|k| !proto_fields.contains(&k[k.rfind('.').unwrap() + 1..]))
            .collect();
        assert!(
            extra.is_empty(),
            "{file}: fields Tempo does not send: {extra:?}"
        );
        // Tag values Tempo reads from the same columns we do (its answers that miss
        // dedicated columns, or give status and kind as numbers, are left out): the
        // same values with the same types.
        if [
            "values-service-name.json",
            "values-name.json",
            "values-name-q.json",
            "values-unscoped-dot.json",
            "values-status-q.json",
            "values-v1.json",
        ]
        .contains(&file.as_str())
        {
            let set = |v: &Value| -> BTreeSet<String> {
                v["tagValues"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(Value::to_string)
                    .collect()
            };
            if file.contains("-q") {
                // With a `q` filter Tempo's answer may miss values (here `db.query`,
                // which auth's spans do have); ours are exact, so they hold Tempo's.
                assert!(set(&ours).is_superset(&set(&theirs)), "{file}");
            } else {
                assert_eq!(set(&ours), set(&theirs), "{file}");
            }
        }
        if file.starts_with("search") && !file.contains("spss") {
            // Every trace Tempo found is found, with the same spansets.
            let all = path
                .replace("limit=5", "limit=100000")
                .replace("limit=20", "limit=100000");
            let all = if all.contains("limit=") {
                all
            } else {
                format!("{all}&limit=100000")
            };
            let found: Value = server.json(&all).await;
            for t in theirs["traces"].as_array().unwrap() {
                let ours = found["traces"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|o| o["traceID"] == t["traceID"])
                    .unwrap_or_else(|| panic!("{file}: trace {} missing", t["traceID"]));
                for key in [
                    "rootServiceName",
                    "rootTraceName",
                    "startTimeUnixNano",
                    "durationMs",
                ] {
                    assert_eq!(ours[key], t[key], "{file}: {key} of {}", t["traceID"]);
                }
                // Tempo's limited answers may stop before a trace's last spanset: each
                // spanset it gives is one of ours, with the same count and attributes.
                let ours_sets = ours["spanSets"].as_array().cloned().unwrap_or_default();
                for set in t["spanSets"].as_array().cloned().unwrap_or_default() {
                    let same = |o: &Value| {
                        o["matched"] == set["matched"]
                            && o.get("attributes").map(|a| a.to_string())
                                == set.get("attributes").map(|a| a.to_string())
                    };
                    assert!(
                        ours_sets.iter().any(same),
                        "{file}: spanset {set} of {} not found in {ours_sets:?}",
                        t["traceID"]
                    );
                }
            }
        }
    }
}

/// Request targets made of pieces of real ones in random order (a fixed seed, 300 of
/// them): each gets an answer that is not a server error, an overlong one a 414, and
/// the server keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_target_makes_the_server_fail() {
    let server = Server::start(&demo()).await;
    let paths = [
        "/api/search?",
        "/api/v2/traces/",
        "/api/traces/",
        "/api/v2/search/tag/",
        "/api/search/tag/",
        "/api/v2/search/tags?",
        "/api/search/tags?",
        "/api/metrics/query_range?",
        "/api/metrics/query?",
        "/api/echo?",
    ];
    let pieces = [
        "q=",
        "%7B",
        "%7D",
        "+",
        "limit=",
        "spss=",
        "-1",
        "0",
        "7",
        "99999999999999999999999",
        "&",
        "start=",
        "end=",
        "step=",
        "1e9",
        "30s",
        "%00",
        "%FF",
        "%C3%A9",
        "..%2F",
        "/",
        "tags=",
        "a%3D%22",
        "minDuration=",
        "scope=",
        "span",
        "status",
        "%3D",
        "error",
        "/values",
        "rate()",
        "%7C",
        "by(",
        ")",
        "resource.service.name",
        ".",
        "%22",
        "ffffffffffffffffffffffffffffffff",
        "abc",
        "0123456789abcdef",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..300 {
        let mut target = paths[next(paths.len())].to_string();
        for _ in 0..next(8) {
            target.push_str(pieces[next(pieces.len())]);
        }
        let reply = server.get(&target, None).await;
        assert!(
            reply.status < 500,
            "GET {target}: {} {}",
            reply.status,
            reply.text()
        );
    }
    let long = format!("/api/search?q={}", "a".repeat(70_000));
    assert_eq!(server.get(&long, None).await.status, 414);
    assert_eq!(server.get("/api/echo", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafanas_service_graph_queries_are_answered_from_stored_spans() {
    let server = Server::start(&demo()).await;
    let engine = traceql_exec::Engine::open(demo().to_str().unwrap())
        .await
        .unwrap();
    let last = engine.blocks().map(|b| b.end_unix_nano).max().unwrap();
    let first = engine.blocks().map(|b| b.start_unix_nano).min().unwrap();
    let time = last / 1_000_000_000 + 1;
    let range = time - first / 1_000_000_000 + 1;
    let (graph, _) = engine
        .services(&traceql_exec::services::ServicesOptions {
            start_unix_nano: Some((time - range) * 1_000_000_000),
            end_unix_nano: Some(time * 1_000_000_000),
            query: None,
        })
        .await
        .unwrap();
    let query = |q: &str| {
        format!(
            "/prometheus/api/v1/query?query={}&time={time}",
            encode(&q.replace("RANGE", &format!("{range}s")))
        )
    };
    let vector = |body: &Value| -> BTreeMap<(String, String), f64> {
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let m = &s["metric"];
                (
                    (
                        m["client"].as_str().unwrap_or_default().to_string(),
                        m["server"].as_str().unwrap_or_default().to_string(),
                    ),
                    s["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
                )
            })
            .collect()
    };
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut failed: BTreeMap<(String, String), f64> = BTreeMap::new();
    for e in &graph.edges {
        *want
            .entry((e.client.clone(), e.server.clone()))
            .or_default() += e.requests as f64;
        *failed
            .entry((e.client.clone(), e.server.clone()))
            .or_default() += e.failed as f64;
    }
    let total = vector(
        &server
            .json(&query(
                "sum by (client, server) (increase(traces_service_graph_request_total[RANGE]))",
            ))
            .await,
    );
    assert_eq!(total, want);
    let rate = vector(
        &server
            .json(&query(
                "sum by (client, server) (rate(traces_service_graph_request_failed_total[RANGE]))",
            ))
            .await,
    );
    for (key, n) in &failed {
        assert!((rate[key] * range as f64 - n).abs() < 1e-6, "{key:?}");
    }
    // The buckets' +Inf is every request; Grafana's filters by label apply.
    let inf = vector(
        &server
            .json(&query(
                "sum by (client, server) (increase(traces_service_graph_request_server_seconds_bucket{le=\"+Inf\", client=\"user\"}[RANGE]))",
            ))
            .await,
    );
    let users: BTreeMap<_, _> = want
        .iter()
        .filter(|((c, _), _)| c == "user")
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(inf, users);
    let groups = server
        .json(&query(
            "group by (client, connection_type, server) (traces_service_graph_request_total)",
        ))
        .await;
    assert_eq!(
        groups["data"]["result"].as_array().unwrap().len(),
        graph.edges.len()
    );
    // Grafana's connection test, and what is not supported.
    let test = server
        .json("/prometheus/api/v1/query?query=1%2B1&time=1")
        .await;
    assert_eq!(test["data"]["result"][1], "2");
    let reply = server.get(&query("histogram_quantile(0.9, x)"), None).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.text().contains("not supported yet"),
        "{}",
        reply.text()
    );

    // Grafana POSTs its queries as a form.
    let body = format!(
        "query={}&time={time}",
        encode("sum by (client, server) (increase(traces_service_graph_request_total[RANGE]))")
            .replace("RANGE", &format!("{range}s"))
    );
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let request = format!(
        "POST /prometheus/api/v1/query HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let reply = Reply::parse(&raw);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let posted: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(vector(&posted), want);
}

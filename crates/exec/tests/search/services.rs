//! The service graph: every rule on hand-built traces, and an evaluator of its own here
//! agreeing with the engine on every edge of the demo store and of Tempo's blocks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use traceql_exec::services::{ServiceGraph, ServicesOptions};
use traceql_exec::store::Store;
use traceql_exec::{Engine, ParsedQuery};
use traceql_format::codes::{kind, status};
use traceql_format::model::{Resource, Scope, Span};
use traceql_format::value::{KeyValue, Value};
use traceql_testkit::require_shared;

use crate::common::{engine_with, repo};

const MS: u64 = 1_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Value::Str(value.into()),
    }
}

/// Builds the spans of hand-made traces.
pub(crate) struct Traces {
    /// The spans built so far.
    pub(crate) spans: Vec<Span>,
    resources: HashMap<String, Arc<Resource>>,
    trace: u8,
    next_span: u8,
}

impl Traces {
    pub(crate) fn new() -> Self {
        Traces {
            spans: Vec::new(),
            resources: HashMap::new(),
            trace: 0,
            next_span: 0,
        }
    }

    /// Starts the next trace.
    pub(crate) fn trace(&mut self) -> &mut Self {
        self.trace += 1;
        self
    }

    /// The resource of `service` (`""`: no `service.name`), with `extra` attributes.
    fn resource(&mut self, service: &str, extra: &[(&str, &str)]) -> Arc<Resource> {
        let key = format!("{service}{extra:?}");
        let resource = self.resources.entry(key).or_insert_with(|| {
            let mut attributes: Vec<KeyValue> = extra.iter().map(|(k, v)| kv(k, v)).collect();
            if !service.is_empty() {
                attributes.push(kv("service.name", service));
            }
            Arc::new(Resource {
                attributes,
                ..Resource::default()
            })
        });
        Arc::clone(resource)
    }

    /// Adds a span of `service` and returns its id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn span(
        &mut self,
        service: &str,
        kind: i8,
        parent: Option<[u8; 8]>,
        start_ms: u64,
        duration_ms: u64,
        error: bool,
        attributes: &[(&str, &str)],
    ) -> [u8; 8] {
        let resource = self.resource(service, &[]);
        self.span_with(
            resource,
            kind,
            parent,
            start_ms,
            duration_ms,
            error,
            attributes,
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn span_with(
        &mut self,
        resource: Arc<Resource>,
        kind: i8,
        parent: Option<[u8; 8]>,
        start_ms: u64,
        duration_ms: u64,
        error: bool,
        attributes: &[(&str, &str)],
    ) -> [u8; 8] {
        self.next_span += 1;
        let span_id = [self.trace, self.next_span, 0, 0, 0, 0, 0, 1];
        let mut trace_id = [0u8; 16];
        trace_id[15] = self.trace;
        let start = 1_700_000_000_000_000_000 + u64::from(self.trace) * 1_000 * MS + start_ms * MS;
        self.spans.push(Span {
            trace_id,
            span_id,
            parent_span_id: parent,
            trace_state: String::new(),
            flags: 0,
            name: format!("op{}", self.next_span),
            kind,
            start_unix_nano: start,
            end_unix_nano: start + duration_ms * MS,
            attributes: attributes.iter().map(|(k, v)| kv(k, v)).collect(),
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status_code: if error { status::ERROR } else { status::UNSET },
            status_message: String::new(),
            resource,
            scope: Arc::new(Scope::default()),
        });
        span_id
    }
}

/// An edge as the tests compare them: requests, failed, server p50 and client p50
/// (milliseconds).
type Edges = BTreeMap<(String, String, String), (u64, u64, f64, f64)>;

fn edges_of(graph: &ServiceGraph) -> Edges {
    graph
        .edges
        .iter()
        .map(|e| {
            (
                (
                    e.client.clone(),
                    e.server.clone(),
                    e.connection_type.clone(),
                ),
                (
                    e.requests,
                    e.failed,
                    (e.server_latency.p50 * 1e3 * 1e3).round() / 1e3,
                    (e.client_latency.p50 * 1e3 * 1e3).round() / 1e3,
                ),
            )
        })
        .collect()
}

fn edge(client: &str, server: &str, ty: &str) -> (String, String, String) {
    (client.into(), server.into(), ty.into())
}

async fn graph(engine: &Engine, query: Option<&str>) -> ServiceGraph {
    let options = ServicesOptions {
        query: query.map(|q| ParsedQuery::parse(q).unwrap()),
        ..ServicesOptions::default()
    };
    engine.services(&options).await.unwrap().0
}

#[tokio::test]
async fn every_rule_of_the_service_graph_on_hand_built_traces() {
    let mut t = Traces::new();
    // A root server span called by nobody: `user`; its client call answered by a
    // server that fails; the client retries in a second call answered twice (the
    // earlier server answers, the later is no request).
    t.trace();
    let root = t.span("web", kind::SERVER, None, 0, 100, false, &[]);
    let call = t.span("web", kind::CLIENT, Some(root), 10, 30, false, &[]);
    t.span("api", kind::SERVER, Some(call), 12, 20, true, &[]);
    let retry = t.span("web", kind::CLIENT, Some(root), 50, 40, false, &[]);
    t.span("api", kind::SERVER, Some(retry), 60, 10, false, &[]);
    t.span("api", kind::SERVER, Some(retry), 55, 30, false, &[]);
    // A client that fails with a server that does not; a server under an internal
    // span (no client: no request); a server whose client is not in the trace.
    let internal = t.span("web", kind::INTERNAL, Some(root), 1, 2, false, &[]);
    t.span("api", kind::SERVER, Some(internal), 1, 1, false, &[]);
    t.span("api", kind::SERVER, Some([9; 8]), 1, 1, false, &[]);
    let failing = t.span("web", kind::CLIENT, Some(root), 91, 8, true, &[]);
    t.span("auth", kind::SERVER, Some(failing), 92, 6, false, &[]);

    // Database calls: named by `server.address`, by `peer.service` before it, by the
    // network address with its port, by the database attribute alone, by the
    // resource's database attribute; a server span under a database call adds
    // nothing.
    t.trace();
    let root = t.span(
        "shop",
        kind::SERVER,
        None,
        0,
        100,
        false,
        &[("peer.service", "mobile")],
    );
    t.span(
        "shop",
        kind::CLIENT,
        Some(root),
        1,
        4,
        false,
        &[("db.system", "postgresql"), ("server.address", "pg.svc")],
    );
    t.span(
        "shop",
        kind::CLIENT,
        Some(root),
        6,
        2,
        true,
        &[
            ("db.system", "postgresql"),
            ("server.address", "pg.svc"),
            ("peer.service", "orders-db"),
        ],
    );
    t.span(
        "shop",
        kind::CLIENT,
        Some(root),
        9,
        3,
        false,
        &[("db.name", "users"), ("network.peer.address", "10.0.0.7")],
    );
    let redis = t.span(
        "shop",
        kind::PRODUCER,
        Some(root),
        13,
        5,
        false,
        &[("db.system.name", "redis")],
    );
    t.span("cache-proxy", kind::SERVER, Some(redis), 14, 3, false, &[]);
    let resource = t.resource("shop-db", &[("db.system", "mysql")]);
    t.span_with(resource, kind::CLIENT, Some(root), 20, 7, false, &[]);

    // Messaging: a producer and its consumer; a consumer at the root of its own trace
    // (`user`); an uninstrumented server named by `peer.service`; a client without a
    // server or peer attribute (no request); spans without `service.name`.
    t.trace();
    let root = t.span("orders", kind::SERVER, None, 0, 50, false, &[]);
    let publish = t.span("orders", kind::PRODUCER, Some(root), 5, 2, false, &[]);
    t.span("worker", kind::CONSUMER, Some(publish), 30, 10, true, &[]);
    t.span(
        "orders",
        kind::CLIENT,
        Some(root),
        8,
        9,
        false,
        &[("peer.service", "stripe")],
    );
    t.span("orders", kind::CLIENT, Some(root), 20, 1, false, &[]);
    let anonymous = t.span("", kind::CLIENT, Some(root), 22, 1, false, &[]);
    t.span("orders", kind::SERVER, Some(anonymous), 22, 1, false, &[]);
    t.trace();
    t.span("mailer", kind::CONSUMER, None, 0, 12, false, &[]);

    let engine = engine_with(t.spans.clone()).await;
    let got = edges_of(&graph(&engine, None).await);
    let want: Edges = [
        (edge("user", "web", "virtual_node"), (1, 0, 100.0, 0.0)),
        (edge("web", "api", ""), (2, 1, 25.0, 35.0)),
        (edge("web", "auth", ""), (1, 1, 6.0, 8.0)),
        (edge("mobile", "shop", "virtual_node"), (1, 0, 100.0, 0.0)),
        (edge("shop", "pg.svc", "database"), (1, 0, 4.0, 4.0)),
        (edge("shop", "orders-db", "database"), (1, 1, 2.0, 2.0)),
        (edge("shop", "10.0.0.7", "database"), (1, 0, 3.0, 3.0)),
        (edge("shop", "redis", "database"), (1, 0, 5.0, 5.0)),
        (edge("shop-db", "mysql", "database"), (1, 0, 7.0, 7.0)),
        (edge("user", "orders", "virtual_node"), (1, 0, 50.0, 0.0)),
        (
            edge("orders", "worker", "messaging_system"),
            (1, 1, 10.0, 2.0),
        ),
        (edge("orders", "stripe", "virtual_node"), (1, 0, 0.0, 9.0)),
        (edge("user", "mailer", "virtual_node"), (1, 0, 12.0, 0.0)),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    // The hand-made traces agree with the evaluator here too.
    assert_eq!(got, reference_edges(&t.spans));

    // Nodes: the requests each received; a node that only calls has no latency.
    let g = graph(&engine, None).await;
    let node = |name: &str| g.nodes.iter().find(|n| n.name == name).unwrap();
    assert_eq!((node("api").requests, node("api").failed), (2, 1));
    assert_eq!(node("user").requests, 0);
    assert!(node("user").avg_latency.is_none());
    let api = node("api").avg_latency.unwrap();
    assert!((api - 0.025).abs() < 1e-12, "{api}");

    // A network address with its port.
    let mut t = Traces::new();
    t.trace();
    t.span(
        "shop",
        kind::CLIENT,
        None,
        0,
        1,
        false,
        &[("db.system", "pg"), ("network.peer.address", "10.0.0.7")],
    );
    let mut spans = t.spans;
    spans[0].attributes.push(KeyValue {
        key: "network.peer.port".into(),
        value: Value::Int(5432),
    });
    let engine = engine_with(spans).await;
    let got = edges_of(&graph(&engine, None).await);
    assert_eq!(
        got.keys().cloned().collect::<Vec<_>>(),
        vec![edge("shop", "10.0.0.7:5432", "database")]
    );
}

#[tokio::test]
async fn a_query_and_a_window_choose_the_requests() {
    let mut t = Traces::new();
    t.trace();
    let root = t.span("web", kind::SERVER, None, 0, 10, true, &[]);
    let call = t.span("web", kind::CLIENT, Some(root), 1, 5, false, &[]);
    t.span("api", kind::SERVER, Some(call), 2, 3, false, &[]);
    t.trace();
    let root = t.span("web", kind::SERVER, None, 0, 10, false, &[]);
    let call = t.span("web", kind::CLIENT, Some(root), 1, 5, false, &[]);
    t.span("db-api", kind::SERVER, Some(call), 2, 3, false, &[]);
    let engine = engine_with(t.spans.clone()).await;

    let failed = edges_of(&graph(&engine, Some("{ status = error }")).await);
    assert_eq!(
        failed.keys().cloned().collect::<Vec<_>>(),
        vec![edge("user", "web", "virtual_node"), edge("web", "api", "")]
    );
    let err = engine
        .services(&ServicesOptions {
            query: Some(ParsedQuery::parse("{ } | rate()").unwrap()),
            ..ServicesOptions::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a metrics query"), "{err}");

    // Requests are counted in the window their span starts in: the two halves of the
    // store's time add up to the whole.
    let whole = graph(&engine, None).await;
    let (start, end) = (whole.start_unix_nano, whole.end_unix_nano);
    let middle = t.spans[3].start_unix_nano;
    let mut requests = 0;
    for (from, to) in [(start, middle), (middle, end)] {
        let (half, _) = engine
            .services(&ServicesOptions {
                start_unix_nano: Some(from),
                end_unix_nano: Some(to),
                query: None,
            })
            .await
            .unwrap();
        assert!(!half.edges.is_empty());
        requests += half.edges.iter().map(|e| e.requests).sum::<u64>();
    }
    assert_eq!(
        requests,
        whole.edges.iter().map(|e| e.requests).sum::<u64>()
    );
    assert_eq!(requests, 4);
}

/// The text of attribute `key`, as the service graph reads it.
fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        })
}

fn is_client(k: i8) -> bool {
    k == kind::CLIENT || k == kind::PRODUCER
}

fn is_server(k: i8) -> bool {
    k == kind::SERVER || k == kind::CONSUMER
}

/// Requests per edge: (failed, server seconds, client seconds) each.
type Requests = BTreeMap<(String, String, String), Vec<(bool, f64, f64)>>;

/// The service graph's requests by the rules, from the spans themselves:
/// (client, server, type) → (failed, server seconds, client seconds) per request.
fn reference_requests(spans: &[Span]) -> Requests {
    let mut traces: BTreeMap<[u8; 16], Vec<&Span>> = BTreeMap::new();
    for s in spans {
        traces.entry(s.trace_id).or_default().push(s);
    }
    let service = |s: &Span| text(&s.resource.attributes, "service.name");
    let seconds = |s: &Span| (s.end_unix_nano - s.start_unix_nano) as f64 / 1e9;
    let failed = |s: &Span| s.status_code == status::ERROR;
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for spans in traces.values() {
        for &span in spans {
            let Some(svc) = service(span) else { continue };
            if is_server(span.kind) && span.parent_span_id.is_none() {
                let client = ["peer.service", "db.name", "db.system", "db.system.name"]
                    .iter()
                    .find_map(|k| text(&span.attributes, k))
                    .unwrap_or_else(|| "user".into());
                out.entry((client, svc.clone(), "virtual_node".into()))
                    .or_default()
                    .push((failed(span), seconds(span), 0.0));
            }
            if !is_client(span.kind) {
                continue;
            }
            let database = ["db.namespace", "db.name", "db.system", "db.system.name"]
                .iter()
                .find_map(|k| {
                    text(&span.attributes, k).or_else(|| text(&span.resource.attributes, k))
                });
            if let Some(database) = database {
                let address = text(&span.attributes, "network.peer.address").map(|a| {
                    match text(&span.attributes, "network.peer.port") {
                        Some(port) => format!("{a}:{port}"),
                        None => a,
                    }
                });
                let server = text(&span.attributes, "peer.service")
                    .or_else(|| text(&span.attributes, "server.address"))
                    .or(address)
                    .unwrap_or(database);
                out.entry((svc, server, "database".into()))
                    .or_default()
                    .push((failed(span), seconds(span), seconds(span)));
                continue;
            }
            let answer = spans
                .iter()
                .filter(|s| {
                    is_server(s.kind)
                        && s.parent_span_id == Some(span.span_id)
                        && service(s).is_some()
                })
                .min_by_key(|s| (s.start_unix_nano, s.span_id));
            match answer {
                Some(server) => {
                    let messaging = [span.kind, server.kind]
                        .iter()
                        .any(|&k| k == kind::PRODUCER || k == kind::CONSUMER);
                    let ty = if messaging { "messaging_system" } else { "" };
                    out.entry((svc, service(server).unwrap(), ty.into()))
                        .or_default()
                        .push((
                            failed(span) || failed(server),
                            seconds(server),
                            seconds(span),
                        ));
                }
                None => {
                    let peer = ["peer.service", "db.name", "db.system", "db.system.name"]
                        .iter()
                        .find_map(|k| text(&span.attributes, k));
                    if let Some(peer) = peer {
                        out.entry((svc, peer, "virtual_node".into()))
                            .or_default()
                            .push((failed(span), 0.0, seconds(span)));
                    }
                }
            }
        }
    }
    out
}

/// The exact percentile `p` of `values`, interpolated between the nearest two.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = p * (values.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    values[low] + (values[high] - values[low]) * (rank - low as f64)
}

fn reference_edges(spans: &[Span]) -> Edges {
    reference_requests(spans)
        .into_iter()
        .map(|(key, requests)| {
            let mut server: Vec<f64> = requests.iter().map(|r| r.1).collect();
            let mut client: Vec<f64> = requests.iter().map(|r| r.2).collect();
            let ms = |v: f64| (v * 1e3 * 1e3).round() / 1e3;
            (
                key,
                (
                    requests.len() as u64,
                    requests.iter().filter(|r| r.0).count() as u64,
                    ms(percentile(&mut server, 0.5)),
                    ms(percentile(&mut client, 0.5)),
                ),
            )
        })
        .collect()
}

/// Compares every statistic of every edge of `graph` with the evaluator's over
/// `spans`: counts exactly, latencies to a nanosecond.
fn check_against_reference(graph: &ServiceGraph, spans: &[Span], what: &str) {
    let mut want = reference_requests(spans);
    assert_eq!(
        graph.edges.len(),
        want.len(),
        "{what}: edges {:?} vs {:?}",
        edges_of(graph).keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    for e in &graph.edges {
        let key = (
            e.client.clone(),
            e.server.clone(),
            e.connection_type.clone(),
        );
        let requests = want
            .get_mut(&key)
            .unwrap_or_else(|| panic!("{what}: {key:?} not expected"));
        assert_eq!(
            e.requests,
            requests.len() as u64,
            "{what}: {key:?} requests"
        );
        let failed = requests.iter().filter(|r| r.0).count() as u64;
        assert_eq!(e.failed, failed, "{what}: {key:?} failed");
        let mut server: Vec<f64> = requests.iter().map(|r| r.1).collect();
        let mut client: Vec<f64> = requests.iter().map(|r| r.2).collect();
        for (got, values, side) in [
            (&e.server_latency, &mut server, "server"),
            (&e.client_latency, &mut client, "client"),
        ] {
            let avg = values.iter().sum::<f64>() / values.len() as f64;
            assert!(close(got.avg, avg), "{what}: {key:?} {side} avg");
            for (p, value) in [(0.5, got.p50), (0.9, got.p90), (0.99, got.p99)] {
                let want = percentile(values, p);
                assert!(
                    close(value, want),
                    "{what}: {key:?} {side} p{p}: {value} vs {want}"
                );
            }
        }
        let within = |bound: f64| server.iter().filter(|&&s| s <= bound).count() as u64;
        let buckets: Vec<u64> = traceql_planner::services::SERVER_BUCKETS
            .iter()
            .map(|&b| within(b))
            .collect();
        assert_eq!(e.server_buckets, buckets, "{what}: {key:?} buckets");
    }
    // Each node received what its incoming edges carry.
    for n in &graph.nodes {
        let incoming: u64 = graph
            .edges
            .iter()
            .filter(|e| e.server == n.name)
            .map(|e| e.requests)
            .sum();
        assert_eq!(n.requests, incoming, "{what}: node {}", n.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_store_graph_agrees_with_the_evaluator_on_every_edge() {
    let dir = repo().join("testdata/demo");
    let store = Store::local(&dir, false).unwrap();
    let mut spans = Vec::new();
    for meta in store.list_blocks().await.unwrap() {
        let data = store.read_data(&meta.id).await.unwrap();
        spans.extend(traceql_format::block::reader::decode_block(data, &meta).unwrap());
    }
    let engine = Engine::with_store(store).await.unwrap();
    let graph = graph(&engine, None).await;
    assert!(graph.edges.len() > 10, "{} edges", graph.edges.len());
    check_against_reference(&graph, &spans, "demo store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tempo_blocks_give_the_graph_of_the_spans_tempo_ingested() {
    let dir = require_shared!(dir("tempo-blocks"));
    let input = crate::tempo_blocks::input_spans(&dir);
    let mut graphs = Vec::new();
    for version in ["v4", "v5"] {
        let tempo = Store::local(&crate::tempo_blocks::block_dir(&dir, version), false).unwrap();
        let converted = Store::in_memory(&format!("services-{version}"));
        traceql_exec::convert::convert(
            &tempo,
            &converted,
            &traceql_format::block::BlockOptions::default(),
            &|_| {},
        )
        .await
        .unwrap();
        for (store, what) in [
            (tempo, version.to_string()),
            (converted, format!("{version} converted")),
        ] {
            let engine = Engine::with_store(store).await.unwrap();
            let graph = graph(&engine, None).await;
            check_against_reference(&graph, &input, &what);
            graphs.push((what, graph));
        }
    }
    let (first, rest) = graphs.split_first().unwrap();
    for (what, graph) in rest {
        assert_eq!(
            edges_of(graph),
            edges_of(&first.1),
            "{what} against {}",
            first.0
        );
    }
    assert!(first.1.edges.len() > 5, "{} edges", first.1.edges.len());
}

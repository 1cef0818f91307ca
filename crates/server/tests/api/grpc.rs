//! Tempo's streaming gRPC API (`tempopb.StreamingQuerier`) on the HTTP port, over
//! HTTP/2 on 127.0.0.1, with tonic's client as Grafana's data source dials it: the
//! same answers as the HTTP API, searches sent round by round, errors as gRPC statuses,
//! and messages that decode with Tempo's own `tempo.proto`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use prost::Message;
use serde_json::Value;
use tonic::Code;
use traceql_exec::ParsedQuery;
use traceql_server::grpc::messages::{
    QueryInstantRequest, QueryInstantResponse, QueryRangeRequest, QueryRangeResponse,
    SearchRequest, SearchResponse, SearchTagValuesRequest, SearchTagValuesResponse,
    SearchTagValuesV2Response, SearchTagsRequest, SearchTagsResponse, SearchTagsV2Response,
};

use super::{Server, demo, encode};

/// A channel to the server at `address`, connected.
async fn connect(address: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Calls `method` with `request` as `tenant` on a channel of its own: every message of
/// the stream, or the status that ended it.
async fn call<Req, Resp>(
    address: SocketAddr,
    method: &str,
    request: Req,
    tenant: Option<&str>,
) -> Result<Vec<Resp>, tonic::Status>
where
    Req: Message + Send + Sync + 'static,
    Resp: Message + Default + Send + 'static,
{
    let exchange = async { call_on(connect(address).await, method, request, tenant).await };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} took over a minute"))
}

/// [`call`] on `channel`.
async fn call_on<Req, Resp>(
    channel: tonic::transport::Channel,
    method: &str,
    request: Req,
    tenant: Option<&str>,
) -> Result<Vec<Resp>, tonic::Status>
where
    Req: Message + Send + Sync + 'static,
    Resp: Message + Default + Send + 'static,
{
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let mut request = tonic::Request::new(request);
    if let Some(tenant) = tenant {
        request
            .metadata_mut()
            .insert("x-scope-orgid", tenant.parse().unwrap());
    }
    let path =
        http::uri::PathAndQuery::from_str(&format!("/tempopb.StreamingQuerier/{method}")).unwrap();
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let mut stream = client
        .server_streaming(request, path, codec)
        .await?
        .into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await? {
        messages.push(message);
    }
    Ok(messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_search_sends_the_http_searchs_traces_round_by_round() {
    let server = Server::start(&demo()).await;
    let q = r#"{ resource.service.name = "frontend" } >> { status = error }"#;
    for limit in [1u32, 20, 200] {
        let http = server
            .json(&format!("/api/search?q={}&limit={limit}&spss=2", encode(q)))
            .await;
        let request = SearchRequest {
            query: q.into(),
            limit,
            spans_per_span_set: 2,
            ..SearchRequest::default()
        };
        let messages: Vec<SearchResponse> =
            call(server.address, "Search", request, None).await.unwrap();
        // As many messages as the search has rounds, each trace in one of them.
        let mut rounds = 0;
        server
            .engine
            .search_progressive(
                &ParsedQuery::parse(q).unwrap(),
                &traceql_exec::SearchOptions {
                    limit: limit as usize,
                    spans_per_spanset: 2,
                    ..Default::default()
                },
                |_, _| {
                    rounds += 1;
                    Ok(())
                },
            )
            .await
            .unwrap();
        assert_eq!(messages.len(), rounds, "limit {limit}");
        let ids: Vec<&str> = messages
            .iter()
            .flat_map(|m| &m.traces)
            .map(|t| t.trace_id.as_str())
            .collect();
        let want: Vec<&str> = http["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, want, "limit {limit}");
        // Every message carries metrics (Grafana reads them unconditionally), and the
        // progress reaches its end with the last.
        for (i, m) in messages.iter().enumerate() {
            let metrics = m.metrics.expect("metrics in every message");
            let last = i + 1 == messages.len();
            assert_eq!(metrics.completed_jobs as usize, i + 1);
            assert_eq!(metrics.total_jobs as usize, i + 1 + usize::from(!last));
        }
        for m in messages.iter().flat_map(|m| &m.traces) {
            assert_eq!(
                m.span_set.as_ref(),
                m.span_sets.first(),
                "spanSet is the first"
            );
            assert!(m.span_sets.iter().all(|s| s.spans.len() <= 2));
        }
    }
    // A selective search over the demo store's windows takes more than one round.
    let request = SearchRequest {
        query: q.into(),
        limit: 200,
        ..SearchRequest::default()
    };
    let messages: Vec<SearchResponse> =
        call(server.address, "Search", request, None).await.unwrap();
    assert!(messages.len() > 1, "{} messages", messages.len());

    // Grafana's health check with streaming on: `{}`, limit 1, the last 15 minutes
    // (nothing there): a clean end after a message with metrics.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let check = SearchRequest {
        query: "{}".into(),
        limit: 1,
        start: now - 900,
        end: now,
        ..SearchRequest::default()
    };
    let messages: Vec<SearchResponse> = call(server.address, "Search", check, None).await.unwrap();
    assert!(!messages.is_empty() && messages.iter().all(|m| m.metrics.is_some()));

    // A legacy search: tags and durations, answered without spansets.
    let legacy = SearchRequest {
        tags: [("service.name".to_string(), "checkout".to_string())].into(),
        min_duration_ms: 1,
        limit: 2,
        ..SearchRequest::default()
    };
    let messages: Vec<SearchResponse> = call(server.address, "Search", legacy, None).await.unwrap();
    let traces: Vec<_> = messages.iter().flat_map(|m| &m.traces).collect();
    assert_eq!(traces.len(), 2);
    assert!(traces.iter().all(|t| t.span_sets.is_empty()));
}

/// `x` as it reads back from JSON text (serde_json's reader may be a unit in the last
/// place off, which the HTTP answers go through and the messages do not).
fn as_json_reads(x: f64) -> f64 {
    serde_json::from_str::<Value>(&serde_json::to_string(&x).unwrap())
        .unwrap()
        .as_f64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_metrics_and_tags_answer_as_the_http_api_does() {
    let server = Server::start(&demo()).await;
    let q = "{ } | rate() by (resource.service.name)";
    let http = server
        .json(&format!("/api/metrics/query_range?q={}&step=60", encode(q)))
        .await;
    let range = QueryRangeRequest {
        query: q.into(),
        step: 60_000_000_000,
        ..QueryRangeRequest::default()
    };
    let messages: Vec<QueryRangeResponse> = call(server.address, "MetricsQueryRange", range, None)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    let series = &messages[0].series;
    let want = http["series"].as_array().unwrap();
    assert_eq!(series.len(), want.len());
    assert!(!series.is_empty());
    for (s, w) in series.iter().zip(want) {
        let label = s.labels[0].value.as_ref().unwrap();
        assert_eq!(
            serde_json::to_value(label).unwrap(),
            w["labels"][0]["value"]
        );
        let points: Vec<(String, f64)> = s
            .samples
            .iter()
            .map(|p| (p.timestamp_ms.to_string(), as_json_reads(p.value)))
            .collect();
        let want: Vec<(String, f64)> = w["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["timestampMs"].as_str().unwrap().to_string(),
                    p["value"].as_f64().unwrap(),
                )
            })
            .collect();
        let differ: Vec<_> = points.iter().zip(&want).filter(|(a, b)| a != b).collect();
        assert_eq!(points.len(), want.len());
        assert!(differ.is_empty(), "{differ:?}");
    }

    let q = "{ status = error } | count_over_time() by (span.http.status_code)";
    let http = server
        .json(&format!("/api/metrics/query?q={}", encode(q)))
        .await;
    let instant = QueryInstantRequest {
        query: q.into(),
        ..QueryInstantRequest::default()
    };
    let messages: Vec<QueryInstantResponse> =
        call(server.address, "MetricsQueryInstant", instant, None)
            .await
            .unwrap();
    let got: Vec<(Value, f64)> = messages[0]
        .series
        .iter()
        .map(|s| {
            let value = s.labels[0].value.as_ref().unwrap();
            (serde_json::to_value(value).unwrap(), as_json_reads(s.value))
        })
        .collect();
    let want: Vec<(Value, f64)> = http["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["labels"][0]["value"].clone(),
                s["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(!got.is_empty());

    // Tags by scope, every tag, and a tag's values, typed and as text.
    let http = server.json("/api/v2/search/tags").await;
    let v2: Vec<SearchTagsV2Response> = call(
        server.address,
        "SearchTagsV2",
        SearchTagsRequest::default(),
        None,
    )
    .await
    .unwrap();
    let scopes: Vec<(String, Vec<String>)> = v2[0]
        .scopes
        .iter()
        .map(|s| (s.name.clone(), s.tags.clone()))
        .collect();
    let want: Vec<(String, Vec<String>)> =
        serde_json::from_value::<Vec<Value>>(http["scopes"].clone())
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    serde_json::from_value(s["tags"].clone()).unwrap(),
                )
            })
            .collect();
    assert_eq!(scopes, want);
    let http = server.json("/api/search/tags").await;
    let v1: Vec<SearchTagsResponse> = call(
        server.address,
        "SearchTags",
        SearchTagsRequest::default(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(&v1[0].tag_names).unwrap(),
        http["tagNames"]
    );
    let values = SearchTagValuesRequest {
        tag_name: "span.http.status_code".into(),
        query: "{ status = error }".into(),
        ..SearchTagValuesRequest::default()
    };
    let http = server
        .json(&format!(
            "/api/v2/search/tag/span.http.status_code/values?q={}",
            encode("{ status = error }")
        ))
        .await;
    let v2: Vec<SearchTagValuesV2Response> =
        call(server.address, "SearchTagValuesV2", values.clone(), None)
            .await
            .unwrap();
    let typed: Vec<Value> = v2[0]
        .tag_values
        .iter()
        .map(|v| serde_json::json!({ "type": v.r#type, "value": v.value }))
        .collect();
    assert_eq!(Value::from(typed), http["tagValues"]);
    let v1: Vec<SearchTagValuesResponse> = call(
        server.address,
        "SearchTagValues",
        SearchTagValuesRequest {
            tag_name: "http.status_code".into(),
            ..values
        },
        None,
    )
    .await
    .unwrap();
    let texts: Vec<&str> = v2[0].tag_values.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(v1[0].tag_values, texts);
    assert!(!texts.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_errors_are_grpc_statuses_with_the_reason() {
    let server = Server::start(&demo()).await;
    let bad = SearchRequest {
        query: "{ span.foo = }".into(),
        ..SearchRequest::default()
    };
    let status = call::<_, SearchResponse>(server.address, "Search", bad, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("invalid TraceQL query"),
        "{status}"
    );
    let search = SearchRequest {
        query: "{ } | rate()".into(),
        ..SearchRequest::default()
    };
    let range = QueryRangeRequest {
        query: "{ }".into(),
        ..QueryRangeRequest::default()
    };
    let status = call::<_, QueryRangeResponse>(server.address, "MetricsQueryRange", range, None)
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "not a metrics query")
    );
    let status = call::<_, SearchResponse>(server.address, "Search", search.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    let backwards = SearchRequest {
        query: "{ }".into(),
        start: 200,
        end: 100,
        ..SearchRequest::default()
    };
    let status = call::<_, SearchResponse>(server.address, "Search", backwards, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    let status = call::<_, SearchResponse>(server.address, "Search", search, Some("../x"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("invalid tenant"), "{status}");
    let status = call::<_, SearchResponse>(
        server.address,
        "FindTraceByID",
        SearchRequest::default(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status}");
    // An answer larger than a gRPC message may be is refused with the reason.
    let wide = QueryRangeRequest {
        query: "{ } | count_over_time() by (trace:id, span:id)".into(),
        ..QueryRangeRequest::default()
    };
    let status = match call::<_, QueryRangeResponse>(
        server.address,
        "MetricsQueryRange",
        wide,
        None,
    )
    .await
    {
        Ok(messages) => panic!(
            "a message of {} bytes was sent",
            messages.iter().map(Message::encoded_len).sum::<usize>()
        ),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(
        status.message().contains("more than the 4194304"),
        "{status}"
    );
    // An unknown tenant answers empty, as over HTTP.
    let empty = SearchRequest {
        query: "{ }".into(),
        ..SearchRequest::default()
    };
    let messages: Vec<SearchResponse> = call(server.address, "Search", empty, Some("nobody"))
        .await
        .unwrap();
    assert!(messages.iter().all(|m| m.traces.is_empty()) && !messages.is_empty());
    // Calls are counted by method in /metrics.
    let metrics = server.get("/metrics", None).await.text();
    assert!(
        metrics.contains(
            "traceql_requests_total{route=\"/tempopb.StreamingQuerier/Search\",status=\"400\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_client_that_hangs_up_stops_its_call() {
    let limits = traceql_server::Limits {
        max_queries: 1,
        timeout: Duration::from_secs(120),
    };
    let server = Server::start_with(&demo(), limits).await;
    let heavy = SearchRequest {
        query: "{ } >> { }".into(),
        limit: 100_000,
        spans_per_span_set: 100,
        ..SearchRequest::default()
    };
    // A connects and makes a small call, so that its next call reaches the server at
    // once; then it calls, and hangs up (drops its channel) while its search runs.
    let channel = connect(server.address).await;
    let small = SearchRequest {
        query: "{ }".into(),
        limit: 1,
        ..SearchRequest::default()
    };
    call_on::<_, SearchResponse>(channel.clone(), "Search", small, None)
        .await
        .unwrap();
    let a = call_on::<_, SearchResponse>(channel, "Search", heavy.clone(), None);
    assert!(
        tokio::time::timeout(Duration::from_millis(40), a)
            .await
            .is_err(),
        "the heavy search ended before A hung up"
    );
    // B calls the same after it: with one turn, B runs after A is done or stopped.
    let b: Vec<SearchResponse> = call(server.address, "Search", heavy, None).await.unwrap();
    assert!(b.iter().map(|m| m.traces.len()).sum::<usize>() > 0);
    // Its answer is several megabytes: sent in messages of about 1 MiB, as Tempo
    // sends them (gRPC clients refuse messages over 4 MiB).
    let sizes: Vec<usize> = b.iter().map(Message::encoded_len).collect();
    assert!(b.len() > 2, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= (1 << 20) + 4096), "{sizes:?}");
    let metrics = server.get("/metrics", None).await.text();
    let count = |status: &str| {
        let prefix = format!(
            "traceql_requests_total{{route=\"/tempopb.StreamingQuerier/Search\",status=\"{status}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::to_string)
    };
    assert_eq!(
        count("200").as_deref(),
        Some("2"),
        "A's small call and B's: {metrics}"
    );
    assert_eq!(
        count("499").as_deref(),
        Some("1"),
        "A's call was stopped: {metrics}"
    );
}

/// Stand-ins for the files `tempo.proto` imports but `shared/` does not hold: the OTLP
/// messages it uses, with OTLP's field numbers, and gogoproto's field options (no
/// effect on the wire).
const STUBS: [(&str, &str); 3] = [
    (
        "github.com/gogo/protobuf/gogoproto/gogo.proto",
        r#"syntax = "proto2";
package gogoproto;
import "google/protobuf/descriptor.proto";
extend google.protobuf.FieldOptions {
  optional bool nullable = 65001;
  optional string customtype = 65003;
  optional bool stdtime = 65010;
}"#,
    ),
    (
        "common/v1/common.proto",
        r#"syntax = "proto3";
package tempopb.common.v1;
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }"#,
    ),
    (
        "trace/v1/trace.proto",
        r#"syntax = "proto3";
package tempopb.trace.v1;
message ResourceSpans {}
message Span { message Link {} }"#,
    ),
];

/// Tempo's messages, compiled from its `tempo.proto` (with [`STUBS`]).
fn tempo_messages(proto_dir: std::path::PathBuf) -> prost_reflect::DescriptorPool {
    struct Stubs;
    impl protox::file::FileResolver for Stubs {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            match STUBS.iter().find(|(path, _)| *path == name) {
                Some((path, source)) => protox::file::File::from_source(path, source),
                None => Err(protox::Error::file_not_found(name)),
            }
        }
    }
    let mut files = protox::file::ChainFileResolver::new();
    files.add(protox::file::IncludeFileResolver::new(proto_dir));
    files.add(Stubs);
    files.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(files);
    compiler.open_file("tempo.proto").unwrap();
    compiler.descriptor_pool()
}

/// `message` decoded as Tempo's message `name` and written as protobuf JSON, as Tempo
/// writes its HTTP answers.
fn as_tempo_json(
    pool: &prost_reflect::DescriptorPool,
    name: &str,
    message: &impl Message,
) -> Value {
    let descriptor = pool
        .get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} in tempo.proto"));
    let decoded =
        prost_reflect::DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
            .unwrap();
    serde_json::to_value(&decoded).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_messages_decode_with_tempos_proto_as_the_http_answers() {
    let Some(dir) = traceql_testkit::shared_dir("tempo-blocks") else {
        return;
    };
    let pool = tempo_messages(dir.join("proto"));
    let server = Server::start(&demo()).await;
    // A search with spanset and span attributes: Tempo's decoder reads our messages as
    // the HTTP answer's traces, field for field.
    let q = "{ status = error } | by(resource.service.name) | select(span.http.route)";
    let http = server
        .json(&format!("/api/search?q={}&limit=5", encode(q)))
        .await;
    let request = SearchRequest {
        query: q.into(),
        limit: 5,
        ..SearchRequest::default()
    };
    let messages: Vec<SearchResponse> =
        call(server.address, "Search", request, None).await.unwrap();
    let mut traces = Vec::new();
    for message in &messages {
        let json = as_tempo_json(&pool, "tempopb.SearchResponse", message);
        assert!(json["metrics"]["completedJobs"].is_number(), "{json}");
        traces.extend(json["traces"].as_array().cloned().unwrap_or_default());
    }
    assert_eq!(Value::from(traces), http["traces"]);
    // Metrics: the range answer's series as Tempo's decoder reads them.
    let q = "{ } | count_over_time() by (span.http.status_code)";
    let http = server
        .json(&format!(
            "/api/metrics/query_range?q={}&step=120",
            encode(q)
        ))
        .await;
    let range = QueryRangeRequest {
        query: q.into(),
        step: 120_000_000_000,
        ..QueryRangeRequest::default()
    };
    let messages: Vec<QueryRangeResponse> = call(server.address, "MetricsQueryRange", range, None)
        .await
        .unwrap();
    let mut json = as_tempo_json(&pool, "tempopb.QueryRangeResponse", &messages[0]);
    // Protobuf JSON leaves a zero out; Tempo's HTTP answer writes it.
    for sample in json["series"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|s| s["samples"].as_array_mut().unwrap())
    {
        sample
            .as_object_mut()
            .unwrap()
            .entry("value")
            .or_insert(Value::from(0.0));
    }
    assert_eq!(json["series"], http["series"]);
    // The requests Grafana sends decode as ours: Tempo's encoding of a search request
    // (with the deprecated timestamp Go's encoder always writes) reads back.
    let descriptor = pool.get_message_by_name("tempopb.SearchRequest").unwrap();
    let tempo_request = prost_reflect::DynamicMessage::deserialize(
        descriptor,
        serde_json::json!({
            "Query": "{ }", "Limit": 7, "SpansPerSpanSet": 2, "start": 10, "end": 20,
            "RF1After": "1970-01-01T00:00:00Z", "Tags": { "a": "b" }
        }),
    )
    .unwrap();
    let ours = SearchRequest::decode(tempo_request.encode_to_vec().as_slice()).unwrap();
    assert_eq!(
        (
            ours.query.as_str(),
            ours.limit,
            ours.spans_per_span_set,
            ours.start,
            ours.end
        ),
        ("{ }", 7, 2, 10, 20)
    );
    assert_eq!(ours.tags.get("a").map(String::as_str), Some("b"));
}

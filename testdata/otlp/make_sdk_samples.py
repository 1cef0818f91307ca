"""Produces real OpenTelemetry SDK output for the ingest tests.

The OpenTelemetry Python SDK exports spans with its OTLP/HTTP exporter to a sink on
127.0.0.1 that saves each request body as sent (protobuf). The same requests are also
written as OTLP/JSON (one request per file) and as JSON lines (one request per line, as
the Collector's file exporter writes them), following the OTLP/JSON rules: hex ids,
integer enums, 64-bit integers as strings. `sdk-expected.json` records what was sent.

    python3 -m venv venv && venv/bin/pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http zstandard
    venv/bin/python make_sdk_samples.py
"""

import base64
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import zstandard
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context

OUT = Path(__file__).resolve().parent
bodies = []


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Sink)
threading.Thread(target=server.serve_forever, daemon=True).start()
endpoint = f"http://127.0.0.1:{server.server_port}/v1/traces"


class Batches:
    """Collects finished spans and exports them in chosen batches, so that one trace
    can be split over several requests (files)."""

    def __init__(self):
        self.exporter = OTLPSpanExporter(endpoint=endpoint)
        self.pending = []

    def processor(self):
        outer = self

        class Collect(SimpleSpanProcessor):
            def on_end(self, span):
                outer.pending.append(span)

        return Collect(self.exporter)

    def flush(self):
        if self.pending:
            self.exporter.export(self.pending)
            self.pending = []


batches = Batches()


def provider(service, version):
    resource = Resource.create(
        {"service.name": service, "service.version": version, "deployment.environment": "test"}
    )
    p = TracerProvider(resource=resource, sampler=ALWAYS_ON)
    p.add_span_processor(batches.processor())
    return p


frontend = provider("frontend", "1.4.2").get_tracer("frontend.http", "0.9.0")
checkout = provider("checkout", "2.0.0").get_tracer("checkout.grpc", "1.2.0")
sent = 0

# Trace 1: a successful request across two services, split over two requests.
with frontend.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
    root.set_attribute("http.method", "GET")
    root.set_attribute("http.status_code", 200)
    root.set_attribute("http.response.status_code", 200)
    root.set_attribute("http.route", "/cart")
    root.set_attribute("net.peer.port", 443)
    root.set_attribute("cache.hit_ratio", 0.75)
    root.set_attribute("feature.flags", ["new-cart", "dark-mode"])
    root.set_attribute("retry.delays_ms", [10, 20, 40])
    with frontend.start_as_current_span("render", kind=SpanKind.INTERNAL) as render:
        render.set_attribute("template.cached", True)
        render.add_event("cache.lookup", {"hit": True, "keys": 3})
    with checkout.start_as_current_span("CheckoutService/GetCart", kind=SpanKind.SERVER,
                                        context=set_span_in_context(root)) as rpc:
        rpc.set_attribute("rpc.system", "grpc")
        rpc.set_attribute("rpc.grpc.status_code", 0)
        rpc.set_attribute("weights", [0.5, 1.5])
        rpc.set_attribute("flags", [True, False])
    batches.flush()
sent += 3
batches.flush()

# Trace 2: a failed checkout with an exception event and a retry.
with frontend.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as root:
    root.set_attribute("http.method", "POST")
    root.set_attribute("http.status_code", 500)
    root.set_status(Status(StatusCode.ERROR, "checkout failed"))
    for attempt in range(2):
        with checkout.start_as_current_span("CheckoutService/PlaceOrder", kind=SpanKind.CLIENT) as call:
            call.set_attribute("retry.attempt", attempt)
            try:
                raise TimeoutError("payment backend timed out")
            except TimeoutError as exc:
                call.record_exception(exc)
                call.set_status(Status(StatusCode.ERROR, str(exc)))
sent += 3
first_trace_context = root.get_span_context()

# Trace 3: a queue consumer linked to the producer of trace 2.
with checkout.start_as_current_span("orders publish", kind=SpanKind.PRODUCER) as producer:
    producer.set_attribute("messaging.system", "kafka")
    producer_context = producer.get_span_context()
with checkout.start_as_current_span(
    "orders process",
    kind=SpanKind.CONSUMER,
    links=[Link(producer_context, {"messaging.operation": "receive"}),
           Link(first_trace_context, {"opentracing.ref_type": "follows_from"})],
) as consumer:
    consumer.set_attribute("messaging.system", "kafka")
    consumer.set_status(Status(StatusCode.OK))
sent += 2
batches.flush()
server.shutdown()

requests = []
for i, body in enumerate(bodies, start=1):
    (OUT / f"sdk-{i}.binpb").write_bytes(body)
    msg = ExportTraceServiceRequest()
    msg.ParseFromString(body)
    requests.append(msg)
# Concatenated protobuf messages merge, so the concatenation is one request with all spans.
everything = b"".join(bodies)
(OUT / "sdk-all.binpb.gz").write_bytes(gzip.compress(everything))
(OUT / "sdk-all.binpb.zst").write_bytes(zstandard.ZstdCompressor().compress(everything))


def hex_ids(value, key=None):
    """OTLP/JSON writes trace and span ids as hex, not base64."""
    if isinstance(value, dict):
        return {k: hex_ids(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [hex_ids(v) for v in value]
    if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
        return base64.b64decode(value).hex()
    return value


as_json = [hex_ids(json_format.MessageToDict(m, use_integers_for_enums=True)) for m in requests]
for i, doc in enumerate(as_json, start=1):
    (OUT / f"sdk-{i}.json").write_text(json.dumps(doc, indent=2) + "\n")
(OUT / "sdk.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in as_json))

spans = sum(len(ss.spans) for m in requests for rs in m.resource_spans for ss in rs.scope_spans)
traces = len({s.trace_id for m in requests for rs in m.resource_spans for ss in rs.scope_spans for s in ss.spans})
assert spans == sent, (spans, sent)
(OUT / "sdk-expected.json").write_text(
    json.dumps({"requests": len(requests), "spans": spans, "traces": traces}, indent=2) + "\n"
)
print(f"{len(requests)} requests, {spans} spans, {traces} traces")

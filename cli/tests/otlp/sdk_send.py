"""Sends traces to a traceql server with the OpenTelemetry Python SDK's OTLP exporter.

Usage: sdk_send.py http|grpc ENDPOINT TRACES
Prints one line of JSON per trace: its id, and per span its id, parent, name, kind and
attributes, as the SDK made them.
"""
import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class Recorder(SpanExporter):
    """Keeps every span the SDK finished, to compare with what the server returns."""

    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


protocol, endpoint, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if protocol == "http":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=endpoint)
else:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression

    # Compressed, as the Collector's otlp exporter sends by default.
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, compression=Compression.Gzip)

provider = TracerProvider(resource=Resource.create({"service.name": f"sdk-{protocol}"}))
recorder = Recorder()
provider.add_span_processor(SimpleSpanProcessor(exporter))
provider.add_span_processor(SimpleSpanProcessor(recorder))
tracer = provider.get_tracer("traceql-test", "1.0")
for i in range(count):
    with tracer.start_as_current_span("GET /api/cart", kind=trace.SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/api/cart")
        root.set_attribute("request.number", i)
        root.set_attribute("cache.hit", i % 2 == 0)
        with tracer.start_as_current_span("SELECT carts", kind=trace.SpanKind.CLIENT) as db:
            db.set_attribute("db.system", "postgresql")
            db.set_attribute("db.rows", 1.5)
            db.add_event("retry", {"attempt": 2})
provider.shutdown()

by_trace = {}
for span in recorder.spans:
    context = span.get_span_context()
    trace_id = format(context.trace_id, "032x")
    by_trace.setdefault(trace_id, []).append(
        {
            "spanID": format(context.span_id, "016x"),
            "parent": format(span.parent.span_id, "016x") if span.parent else None,
            "name": span.name,
            "kind": span.kind.name,
            "attributes": dict(span.attributes),
            "events": [event.name for event in span.events],
        }
    )
for trace_id, spans in by_trace.items():
    print(json.dumps({"traceID": trace_id, "spans": spans}))

"""OpenTelemetry: one trace per enhancement, carried across the database hand-off.

The ingress starts the trace and stores a W3C ``traceparent`` carrier on the job row; the
dispatcher and enhancer continue it from there, so the trace survives queueing, crashes and
process restarts. Calls between Serve deployments and to the rate-limiter actors pass a carrier
explicitly (Serve's own tracing is off by default and does not reach plain actors).

Exporters, all optional and combinable:
- OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (Jaeger, Tempo, an OTel collector);
- ``AI_AGENTS_TRACE_FILE=/path/spans.jsonl``: every process appends one JSON line per finished
  span (how the integration tests see spans made inside Ray replicas; handy on one machine);
- ``configure_tracing(exporter=...)``: an in-process exporter (unit tests), replacing the
  previous one given this way.
Without any, spans still get ids, which are stored and returned by the API, but are not
recorded (``_RecordWhileExporting``): a recorded span nobody exports only costs CPU, a large
part of the ingress's per-webhook work.

The resource follows OpenTelemetry's environment conventions: ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` win over the built-in ``service.name``/``service.version``
(the KubeRay values set them per deployment). Outgoing httpx requests (SDP, the LLM endpoint)
become client spans through opentelemetry-instrumentation-httpx; database queries through
``db.query_tracing``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    DEFAULT_ON,
    Decision,
    Sampler,
    SamplingResult,
)
from opentelemetry.util.types import Attributes

TRACE_FILE_ENV = "AI_AGENTS_TRACE_FILE"

_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None  # _provider's, made with it
_lock = threading.Lock()


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per span; safe for many processes sharing one file.

    Each export is a single ``write`` on an ``O_APPEND`` descriptor, so lines from different
    replicas never interleave, and nothing is buffered: a test reads the file as soon as the
    work it waits for is done.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_record(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "name": span.name,
        "trace_id": format(ctx.trace_id, "032x") if ctx else None,
        "span_id": format(ctx.span_id, "016x") if ctx else None,
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "service": span.resource.attributes.get("service.name"),
        "pid": os.getpid(),
    }


class _ReplaceableProcessor(SpanProcessor):
    """The slot ``configure_tracing(exporter=...)`` fills; a global provider cannot be swapped
    once set, but what one of its processors forwards to can."""

    def __init__(self) -> None:
        self.target: SpanProcessor | None = None

    def on_start(self, span: Any, parent_context: otel_context.Context | None = None) -> None:
        if self.target is not None:
            self.target.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.target is not None:
            self.target.on_end(span)

    def shutdown(self) -> None:
        if self.target is not None:
            self.target.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.target.force_flush(timeout_millis) if self.target is not None else True


_slot = _ReplaceableProcessor()


class _RecordWhileExporting(Sampler):
    """OpenTelemetry's default (parent-based, always on) while some exporter is configured;
    otherwise every span is dropped — it still gets a trace and span id, which the job row,
    the API and log lines carry, and ``traceparent`` still propagates."""

    def __init__(self) -> None:
        self.exporting = False

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if self.exporting:
            return DEFAULT_ON.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        parent = trace.get_current_span(parent_context).get_span_context()
        return SamplingResult(Decision.DROP, None, parent.trace_state if parent.is_valid else None)

    def get_description(self) -> str:
        return f"RecordWhileExporting(exporting={self.exporting})"


_sampler = _RecordWhileExporting()


def service_resource(service_name: str = "ai-agents") -> Resource:
    """The process's resource: environment first (``OTEL_SERVICE_NAME``, then
    ``OTEL_RESOURCE_ATTRIBUTES``), our defaults only for what it leaves unset."""
    from_env = OTELResourceDetector().detect().attributes
    defaults: dict[str, str] = {}
    if not from_env.get("service.name"):
        defaults["service.name"] = service_name
    if not from_env.get("service.version"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            defaults["service.version"] = importlib.metadata.version("ai-agents")
    return Resource.create(defaults)


def instrument_httpx() -> None:
    """Every httpx client in this process (our SDP client, the openai SDK's transport) makes
    a client span per request and sends ``traceparent``; idempotent."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=_provider)


def configure_tracing(
    service_name: str = "ai-agents", *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """Idempotent per process (every Ray replica calls it in its constructor); the first call
    builds the provider from the environment, an ``exporter`` replaces the previous one."""
    global _provider, _tracer
    with _lock:
        if _provider is None:
            provider = TracerProvider(resource=service_resource(service_name), sampler=_sampler)
            if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
                _sampler.exporting = True
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            if path := os.environ.get(TRACE_FILE_ENV):
                _sampler.exporting = True
                provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
            provider.add_span_processor(_slot)
            trace.set_tracer_provider(provider)
            _provider = provider
            _tracer = provider.get_tracer("ai_agents")
            instrument_httpx()
        if exporter is not None:
            _slot.target = SimpleSpanProcessor(exporter)
            _sampler.exporting = True
        return _provider


def tracer() -> trace.Tracer:
    # Our provider's tracer when configured (made once, with the provider: get_tracer builds a
    # new Tracer on every call, too costly on the webhook path), even if something else won
    # the race for the global provider.
    return _tracer or trace.get_tracer("ai_agents")


def current_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def context_from_carrier(carrier: dict[str, Any] | None) -> otel_context.Context:
    return extract(carrier or {})


@contextmanager
def continued(carrier: dict[str, Any] | None) -> Iterator[None]:
    """Make the caller's span current in another process (a Serve handle call's receiver)."""
    token = otel_context.attach(context_from_carrier(carrier)) if carrier else None
    try:
        yield
    finally:
        if token is not None:
            otel_context.detach(token)


def trace_id_hex(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def name_request_span(method: str, route: str) -> None:
    """Name the current HTTP request's span after its route template, as FastAPI does when its
    router picks a route: for a request a lean ASGI path answers without that router."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("http.route", route)
        span.update_name(f"{method} {route}")

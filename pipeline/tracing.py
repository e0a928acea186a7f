"""OpenTelemetry: one trace per enhancement, carried across the database hand-off.

The ingress starts the trace and stores a W3C ``traceparent`` carrier on the job row; the
dispatcher and enhancer continue it from there, so the trace survives queueing, crashes and
process restarts. Exporter: OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, otherwise
none (spans still get ids, which are stored and returned by the API). Tests install an
in-memory exporter with ``configure_tracing(exporter=...)``.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

_configured = False


def configure_tracing(service_name: str = "ai-agents", *,
                      exporter: SpanExporter | None = None) -> None:
    """Idempotent per process; Ray replicas each call it in their constructor."""
    global _configured
    if _configured and exporter is None:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider) if not _configured else None
    if _configured and exporter is not None:
        trace._TRACER_PROVIDER = provider  # type: ignore[attr-defined]  # test re-wiring
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("ai_agents")


def current_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def context_from_carrier(carrier: dict[str, Any] | None) -> otel_context.Context:
    return extract(carrier or {})


def trace_id_hex(span: trace.Span) -> str | None:
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None

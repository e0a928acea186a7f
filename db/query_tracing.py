"""A span per database query, from asyncpg's own query logger.

asyncpg calls a connection's query loggers after each query with the elapsed time; the
callback is scheduled with ``call_soon``, which copies the caller's context, so the span lands
under whatever span was current when the query ran (webhook.receive, enhancement.context ...).
No third-party instrumentation: opentelemetry-instrumentation-asyncpg has no release matching
the OpenTelemetry SDK we pin. Only the SQL text is recorded (parameters never are), and not
even that for statements that could carry a credential.
"""

from __future__ import annotations

import re
import time
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

_MAX_TEXT = 2000
_SECRET_LOOKING = re.compile(r"password|secret|\bkey\b", re.IGNORECASE)


# Made once: get_tracer builds a Tracer on every call, too costly once per query. Until a
# provider is set this is OpenTelemetry's proxy, which binds to it when it is.
_TRACER = trace.get_tracer("ai_agents.db")


def _span_for(record: Any) -> None:
    end_ns = time.time_ns()
    span = _TRACER.start_span(
        "query",
        kind=SpanKind.CLIENT,
        start_time=end_ns - int(record.elapsed * 1e9),
    )
    if not span.is_recording():
        return  # nothing exports spans (the sampler dropped it): skip the attribute work
    query = " ".join(str(record.query).split())
    operation = query.split(" ", 1)[0].upper() if query else "QUERY"
    database = getattr(record.conn_params, "database", None) or ""
    span.update_name(f"{operation} {database}".strip())
    span.set_attributes(
        {
            "db.system": "postgresql",
            "db.system.name": "postgresql",
            "db.operation.name": operation,
            "db.namespace": database,
        }
    )
    if not _SECRET_LOOKING.search(query):
        span.set_attribute("db.query.text", query[:_MAX_TEXT])
    address = record.conn_addr
    if isinstance(address, tuple) and len(address) >= 2:
        span.set_attribute("server.address", str(address[0]))
        span.set_attribute("server.port", int(address[1]))
    if record.exception is not None:
        span.set_attribute("error.type", type(record.exception).__name__)
        span.set_status(Status(StatusCode.ERROR, type(record.exception).__name__))
    span.end(end_time=end_ns)


def trace_queries(conn: asyncpg.Connection) -> None:
    """Record every query on ``conn`` as a span (no-op cost when tracing exports nothing)."""
    conn.add_query_logger(_span_for)

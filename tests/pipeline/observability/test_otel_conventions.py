"""OpenTelemetry conventions: the resource honours OTEL_SERVICE_NAME/OTEL_RESOURCE_ATTRIBUTES,
LLM attempts are GenAI client spans with token usage, httpx requests and asyncpg queries appear
as spans under the current one, and spans reach a real OTLP/HTTP receiver over loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core.version import package_version
from db.pool import tenant_transaction
from pipeline.llm.client import LLMClient, LLMClientConfig, LLMUnavailable
from pipeline.observability.tracing import configure_tracing, service_resource, tracer
from simulators.llm import LLMSimulatorState, create_app
from simulators.serving import ServerHandle, run_in_thread

KEY = "sk-or-v1-otel-test"
MESSAGES = [
    {"role": "system", "content": "answer in JSON"},
    {
        "role": "user",
        "content": "<<<TICKET>>>\nid: 1\nsubject: VPN down\n"
        "description:\nno tunnel\n<<<END TICKET>>>\n",
    },
]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    configure_tracing(exporter=exporter)
    return exporter


@pytest.fixture(scope="module")
def llm_sim() -> Iterator[tuple[LLMSimulatorState, ServerHandle]]:
    state = LLMSimulatorState(api_keys=[KEY])
    with run_in_thread(create_app(state), graceful_shutdown_s=0.2) as handle:
        yield state, handle


# ------------------------------------------------------------------------------ resource


def test_resource_defaults_without_environment(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    attributes = service_resource().attributes
    assert attributes["service.name"] == "ai-agents"
    assert attributes["service.version"] == package_version()


def test_otel_service_name_and_resource_attributes_win(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "ai-agents-prod")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment=production,service.name=ignored,service.version=9.9.9",
    )
    attributes = service_resource().attributes
    assert attributes["service.name"] == "ai-agents-prod"  # OTEL_SERVICE_NAME beats both
    assert attributes["deployment.environment"] == "production"
    assert attributes["service.version"] == "9.9.9"


def test_service_name_from_resource_attributes_alone(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    assert service_resource().attributes["service.name"] == "from-attributes"


# ------------------------------------------------------------------------------ GenAI + httpx


async def test_llm_attempt_is_a_genai_client_span_with_usage(spans, llm_sim) -> None:
    state, handle = llm_sim
    state.reset()
    client = LLMClient(
        LLMClientConfig(
            base_url=f"{handle.url}/api/v1",
            api_key=KEY,
            models=("vendor/primary",),
            timeout_s=5,
            deadline_s=10,
        )
    )
    try:
        with tracer().start_as_current_span("enhancement.synthesis") as parent:
            result = await client.complete(MESSAGES)
    finally:
        await client.aclose()
    finished = spans.get_finished_spans()
    (chat,) = [s for s in finished if s.name == "chat vendor/primary"]
    assert chat.kind == SpanKind.CLIENT
    assert chat.parent.span_id == parent.get_span_context().span_id
    attributes = dict(chat.attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.system"] == "openai"  # a loopback endpoint, not openrouter.ai
    assert attributes["gen_ai.request.model"] == "vendor/primary"
    assert attributes["gen_ai.response.model"] == result.model
    assert attributes["gen_ai.usage.input_tokens"] == result.prompt_tokens > 0
    assert attributes["gen_ai.usage.output_tokens"] == result.completion_tokens > 0
    assert not any("content" in key or "prompt" in key for key in attributes)


async def test_httpx_requests_are_client_spans_carrying_the_trace(spans, llm_sim) -> None:
    """Our SDP client is an httpx client: every request becomes a child span and carries
    `traceparent`. (The openai SDK ships its own HTTP stack, so LLM calls are traced by the
    GenAI span above, not by this instrumentation.)"""
    _, handle = llm_sim
    async with httpx.AsyncClient() as http:
        with tracer().start_as_current_span("enhancement.writeback") as parent:
            response = await http.get(f"{handle.url}/api/v1/models")
    finished = spans.get_finished_spans()
    (request,) = [s for s in finished if s.kind == SpanKind.CLIENT and s.name == "GET"]
    assert request.parent.span_id == parent.get_span_context().span_id
    status = request.attributes.get(
        "http.response.status_code", request.attributes.get("http.status_code")
    )
    assert status == response.status_code


async def test_failed_attempts_are_error_spans(spans, llm_sim) -> None:
    state, handle = llm_sim
    state.reset()
    state.add_fault("server_error", count=5)
    client = LLMClient(
        LLMClientConfig(
            base_url=f"{handle.url}/api/v1",
            api_key=KEY,
            models=("vendor/primary",),
            timeout_s=5,
            deadline_s=10,
            max_attempts=2,
            backoff_base_s=0.01,
            backoff_max_s=0.02,
        )
    )
    try:
        with pytest.raises(LLMUnavailable):
            await client.complete(MESSAGES)
    finally:
        await client.aclose()
    chats = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert [s.attributes["llm.attempt"] for s in chats] == [1, 2]
    for span in chats:
        assert span.status.status_code.name == "ERROR"
        assert span.attributes["error.type"] == "server_error"
        assert "gen_ai.usage.input_tokens" not in span.attributes


def test_openrouter_endpoint_is_named_openrouter() -> None:
    from pipeline.observability.genai_span import genai_system

    assert genai_system("https://openrouter.ai/api/v1") == "openrouter"
    assert genai_system("https://api.openai.com/v1") == "openai"


# ------------------------------------------------------------------------------ asyncpg


async def test_queries_become_spans_under_the_current_span(
    spans, pool: asyncpg.Pool, make_tenant
) -> None:
    tenant = await make_tenant("otel")
    with tracer().start_as_current_span("unit.db") as parent:
        async with tenant_transaction(pool, tenant.tenant_id) as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM assets WHERE network <<= $1::cidr", "10.0.0.0/8"
            )
    assert count == 0
    for _ in range(50):  # the query logger runs on a later loop iteration
        if any(
            "assets" in s.attributes.get("db.query.text", "") for s in spans.get_finished_spans()
        ):
            break
        await asyncio.sleep(0.02)
    db_spans = [s for s in spans.get_finished_spans() if s.attributes.get("db.system")]
    (query,) = [s for s in db_spans if "assets" in s.attributes.get("db.query.text", "")]
    assert query.kind == SpanKind.CLIENT
    assert query.parent.span_id == parent.get_span_context().span_id
    assert query.attributes["db.system.name"] == "postgresql"
    assert query.attributes["db.operation.name"] == "SELECT"
    assert "10.0.0.0/8" not in query.attributes["db.query.text"]  # parameters never recorded
    assert query.end_time >= query.start_time
    # the tenant is set by set_config($1): the statement is traced, the tenant id is not in it
    (set_tenant,) = [
        s
        for s in db_spans
        if "set_config" in s.attributes.get("db.query.text", "")
        and s.parent is not None
        and s.parent.span_id == parent.get_span_context().span_id
    ]
    assert tenant.tenant_id not in set_tenant.attributes["db.query.text"]


# ------------------------------------------------------------------------------ OTLP/HTTP


class _Receiver(BaseHTTPRequestHandler):
    requests: list[ExportTraceServiceRequest] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).requests.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_spans_reach_an_otlp_http_receiver_with_the_environment_resource() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AI_AGENTS_"))}
        env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
                "OTEL_SERVICE_NAME": "ai-agents-otlp-test",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=ci",
            }
        )
        code = (
            "from pipeline.observability.tracing import configure_tracing, tracer\n"
            "provider = configure_tracing()\n"
            "with tracer().start_as_current_span('otlp.probe'):\n    pass\n"
            "provider.shutdown()\n"
        )
        subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=ROOT,
            check=True,
            timeout=60,
            capture_output=True,
        )
    finally:
        server.shutdown()
    spans = [
        (resource_spans.resource, span)
        for request in _Receiver.requests
        for resource_spans in request.resource_spans
        for scope in resource_spans.scope_spans
        for span in scope.spans
    ]
    (resource, span) = [(r, s) for r, s in spans if s.name == "otlp.probe"][0]
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "ai-agents-otlp-test"
    assert attributes["deployment.environment"] == "ci"

"""The webhook fast path (serve_app/routes/webhook_fast_path.py) answers exactly as FastAPI's
router does, without going through it.

Two apps on the real PostgreSQL, one with the fast path (what ``create_api`` builds, what the
Ingress serves) and one without (``lean_webhooks=False``: the declared routes through FastAPI),
get the same requests; each answer (status, bytes, the headers that matter), the metrics they
count and the log lines they write must be the same. The rest of the webhook contract (accepted,
duplicate, replay across routes, bad input of every kind) is tested against the fast path by the
suites that use ``create_api``: tests/api, tests/serve_app, tests/integration and tests/e2e.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.middleware.exceptions import ExceptionMiddleware

from core import metric_catalogue as mc
from core.settings import Settings
from db.embedded import EmbeddedDatabase
from pipeline.observability.metrics import InMemoryMetrics
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.servicedesk.webhook_sender import webhook_headers
from tests.conftest import MakeTenant
from tests.ray_free_api import BASE_URL, ray_free_settings

LIMIT = 4096
HEADERS_COMPARED = ("content-type", "content-length", "retry-after", "connection", "allow")


@dataclass
class Twin:
    state: ApiState
    app: FastAPI
    http: httpx.AsyncClient
    router_calls: list[str]

    @property
    def metrics(self) -> InMemoryMetrics:
        assert isinstance(self.state.metrics, InMemoryMetrics)
        return self.state.metrics


def _count_router_calls(app: FastAPI) -> list[str]:
    """Record every request that reaches FastAPI's exception middleware, i.e. its router."""
    app.middleware_stack = app.build_middleware_stack()
    layer: Any = app.middleware_stack
    while not isinstance(layer, ExceptionMiddleware):
        layer = layer.app
    calls: list[str] = []
    inner = layer.app

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await inner(scope, receive, send)

    layer.app = counting
    return calls


@pytest.fixture(scope="module")
async def twins(
    database: EmbeddedDatabase, encryption_keys: str, data_dir: Path
) -> AsyncIterator[tuple[Twin, Twin]]:
    settings = ray_free_settings(
        database, encryption_keys, data_dir, max_body_bytes=LIMIT, body_read_timeout_s=0.5
    )
    twins = []
    for lean in (True, False):
        state = ApiState.from_settings(settings, directory_ttl_s=0.0)
        app = create_api(state, lean_webhooks=lean)
        calls = _count_router_calls(app)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=30
        )
        twins.append(Twin(state, app, http, calls))
    try:
        yield twins[0], twins[1]
    finally:
        for twin in twins:
            await twin.http.aclose()
            await twin.state.close()


Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def _same_answer(
    twins: tuple[Twin, Twin], send: Send, caplog: pytest.LogCaptureFixture
) -> httpx.Response:
    """Send the request to both apps; the answers and the log lines must be the same."""
    answers, logs = [], []
    for twin in twins:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            answers.append(await send(twin.http))
        logs.append(
            [(r.name, r.levelname, r.getMessage()) for r in caplog.records if "serve_app" in r.name]
        )
    lean, plain = answers
    assert (lean.status_code, lean.content) == (plain.status_code, plain.content)
    for name in HEADERS_COMPARED:
        assert lean.headers.get(name) == plain.headers.get(name), name
    assert logs[0] == logs[1]
    return lean


def _post(
    path: str, content: Any, headers: dict[str, str] | None = None
) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
    async def send(http: httpx.AsyncClient) -> httpx.Response:
        body = content() if callable(content) else content
        return await http.post(f"{BASE_URL}{path}", content=body, headers=headers or {})

    return send


def _signed(body: bytes, secret: str, content_type: str = "application/json") -> dict[str, str]:
    headers = webhook_headers(body, mode="hmac", secret=secret)
    headers["Content-Type"] = content_type
    return headers


async def test_a_webhook_is_answered_without_fastapis_router(
    twins: tuple[Twin, Twin], make_tenant: MakeTenant
) -> None:
    lean, plain = twins
    tenant = await make_tenant("fp")
    assert tenant.webhook_secret is not None
    for twin in twins:
        twin.router_calls.clear()  # what the module's other tests sent
    for twin in twins:
        body = json.dumps({"request": {"id": uuid.uuid4().hex[:10], "subject": "VPN"}}).encode()
        path = f"/webhook/servicedesk/{tenant.tenant_id}"
        answer = await twin.http.post(
            path, content=body, headers=_signed(body, tenant.webhook_secret)
        )
        assert answer.status_code == 202, answer.text
        assert (await twin.http.get("/health")).status_code == 200
    assert lean.router_calls == ["/health"]
    assert plain.router_calls == [f"/webhook/servicedesk/{tenant.tenant_id}", "/health"]


async def test_refusals_are_the_same_as_through_fastapi(
    twins: tuple[Twin, Twin], make_tenant: MakeTenant, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant("fp")
    secret = tenant.webhook_secret
    assert secret is not None
    route = f"/webhook/servicedesk/{tenant.tenant_id}"
    no_id = json.dumps({"request": {"subject": "no id"}}).encode()
    resolved = json.dumps(
        {
            "request": {
                "id": "77",
                "subject": "s",
                "status": {"name": "Resolved"},
                "resolution": {"content": "restarted"},
            }
        }
    ).encode()
    unresolved = json.dumps({"request": {"id": "78", "subject": "s"}}).encode()
    malformed = b'{"request": {"id": '
    nul = json.dumps({"request": {"id": "79", "subject": "a\u0000b"}}).encode()
    big = b'{"request": {"id": "80", "subject": "' + b"x" * LIMIT + b'"}}'

    async def chunked_big() -> AsyncIterator[bytes]:
        for _ in range(LIMIT // 1024 + 2):
            yield b" " * 1024

    async def slow() -> AsyncIterator[bytes]:
        yield b"{"
        await asyncio.sleep(1.5)
        yield b"}"

    cases: dict[str, Send] = {
        "oversized (declared)": _post(route, big, _signed(big, secret)),
        "oversized (chunked)": _post(route, chunked_big, {"Content-Type": "application/json"}),
        "slow body": _post(route, slow, {"Content-Type": "application/json"}),
        "malformed JSON": _post(route, malformed, _signed(malformed, secret)),
        "malformed JSON, unsigned": _post(route, malformed, {"Content-Type": "application/json"}),
        "malformed JSON as text/plain": _post(
            route, malformed, _signed(malformed, secret, "text/plain")
        ),
        "JSON as a form": _post(
            route, no_id, _signed(no_id, secret, "application/x-www-form-urlencoded")
        ),
        "NUL in a field": _post(route, nul, _signed(nul, secret)),
        "NUL in the path": _post(f"{route}%00", no_id, _signed(no_id, secret)),
        "no credentials": _post(route, no_id, {"Content-Type": "application/json"}),
        "bad signature": _post(route, no_id, _signed(no_id, "not-the-secret")),
        "unknown tenant": _post("/webhook/servicedesk/fp-nobody", no_id, _signed(no_id, secret)),
        "not a tenant id": _post("/webhook/servicedesk/NOT_A_SLUG", no_id, _signed(no_id, secret)),
        "no ticket id": _post(route, no_id, _signed(no_id, secret)),
        "resolved on the new-ticket route": _post(route, resolved, _signed(resolved, secret)),
        "no resolution on the resolved route": _post(
            f"{route}/resolved", unresolved, _signed(unresolved, secret)
        ),
        "trailing slash": _post(f"{route}/", no_id, _signed(no_id, secret)),
    }
    statuses = {}
    for name, send in cases.items():
        statuses[name] = (await _same_answer(twins, send, caplog)).status_code
    get = await _same_answer(twins, lambda http: http.get(route), caplog)
    assert get.status_code == 405
    assert statuses == {
        "oversized (declared)": 413,
        "oversized (chunked)": 413,
        "slow body": 408,
        "malformed JSON": 400,
        "malformed JSON, unsigned": 400,
        "malformed JSON as text/plain": 400,
        "JSON as a form": 422,
        "NUL in a field": 422,
        "NUL in the path": 422,
        "no credentials": 401,
        "bad signature": 403,
        "unknown tenant": 403,
        "not a tenant id": 403,
        "no ticket id": 422,
        "resolved on the new-ticket route": 422,
        "no resolution on the resolved route": 422,
        "trailing slash": 307,
    }
    lean, plain = twins
    assert lean.metrics.counters == plain.metrics.counters
    routes = {
        dict(labels).get("route")
        for name, labels in lean.metrics.counters
        if name == mc.HTTP_REQUESTS.name
    }
    assert {
        "/webhook/servicedesk/{tenant_id}",
        "/webhook/servicedesk/{tenant_id}/resolved",
    } <= routes


async def test_the_intake_throttle_answers_the_same(
    twins: tuple[Twin, Twin], make_tenant: MakeTenant, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = await make_tenant("fp", settings={"webhook_rate_per_minute": 1})
    assert tenant.webhook_secret is not None
    no_id = json.dumps({"request": {"subject": "no id"}}).encode()
    send = _post(
        f"/webhook/servicedesk/{tenant.tenant_id}", no_id, _signed(no_id, tenant.webhook_secret)
    )
    assert (await _same_answer(twins, send, caplog)).status_code == 422  # the one token
    throttled = await _same_answer(twins, send, caplog)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1


async def test_a_database_outage_is_a_503_on_the_fast_path(
    database: EmbeddedDatabase, encryption_keys: str, data_dir: Path
) -> None:
    settings: Settings = ray_free_settings(database, encryption_keys, data_dir).model_copy(
        update={"database_url": SecretStr("postgresql://nobody@127.0.0.1:9/none")}
    )
    state = ApiState.from_settings(settings)
    body = b'{"request": {"id": "1"}}'
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_api(state)), base_url=BASE_URL
        ) as http:
            answer = await http.post(
                "/webhook/servicedesk/fp-down", content=body, headers=_signed(body, "s")
            )
    finally:
        await state.close()
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json() == {"detail": "Database unavailable, retry later"}


def test_the_openapi_document_is_the_one_the_declared_routes_give(twins: tuple[Twin, Twin]) -> None:
    lean, plain = twins
    document = lean.app.openapi()
    assert document == plain.app.openapi()
    assert {"/webhook/servicedesk/{tenant_id}", "/webhook/servicedesk/{tenant_id}/resolved"} <= set(
        document["paths"]
    )

"""Issue 14 item 9: every route, fuzzed with hostile input (full Unicode with NUL and lone
surrogates, deep JSON, huge numbers, absurd dates, non-UTF-8 bytes) in paths, queries and
bodies, authenticated as the route expects — webhooks signed in both auth modes — against the
app under real uvicorn and PostgreSQL. No answer may be a 5xx; every error is JSON with a
``detail``. Derandomized, so CI runs are reproducible."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.servicedesk.webhook_sender import webhook_headers
from tests.api.hostile_input import (
    RawNumber,
    body_for,
    numbers,
    text,
    url_part,
    webhook_payloads,
)

ROUTES = [
    ("POST", "/webhook/servicedesk/{tenant_id}"),
    ("POST", "/webhook/servicedesk/{tenant_id}/resolved"),
    ("GET", "/api/v1/enhancements/{enhancement_id}"),
    ("GET", "/api/v1/enhancements/{enhancement_id}/explain"),
    ("GET", "/api/v1/enhancements"),
    ("POST", "/api/v1/feedback"),
    ("GET", "/api/v1/feedback"),
    ("GET", "/api/v1/feedback/stats"),
    ("GET", "/api/v1/usage"),
    ("GET", "/admin/tenants"),
    ("POST", "/admin/tenants"),
    ("PATCH", "/admin/tenants/{tenant_id}"),
    ("POST", "/admin/tenants/{tenant_id}/disable"),
    ("POST", "/admin/tenants/{tenant_id}/rotate-secret"),
    ("POST", "/admin/tenants/{tenant_id}/rotate-token"),
    ("POST", "/admin/tenants/{tenant_id}/erase-requester"),
    ("GET", "/health"),
    ("GET", "/api/v1/ready"),
    ("GET", "/metrics"),
]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@pytest.fixture(scope="module")
def fuzz_target(bare_server) -> Iterator[dict[str, Any]]:
    """Tenants created once: two webhook senders (hmac, token) and a victim for admin routes."""
    handle, admin_token, app = bare_server
    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=handle.url, timeout=30) as http:
        tenants = {}
        for role, mode in [("hmac", "hmac"), ("token", "token"), ("victim", "hmac")]:
            tenant_id = f"fz-{role}-{uuid.uuid4().hex[:6]}"
            answer = http.post(
                "/admin/tenants",
                headers=admin,
                json={
                    "id": tenant_id,
                    "sdp_url": "https://sdp.example.com",
                    "sdp_key": "k",
                    "webhook_auth": mode,
                    "settings": {"webhook_rate_per_minute": 1_000_000},
                },
            )
            assert answer.status_code == 201, answer.text
            tenants[role] = {"id": tenant_id, **answer.json()}
        yield {"http": http, "app": app, "admin": admin, "tenants": tenants}


def assert_handled(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:800])
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), response.text
        assert "detail" in response.json() and "Traceback" not in response.text


def test_the_fuzzed_routes_are_all_the_routes(fuzz_target) -> None:
    documented = {
        (method.upper(), path)
        for path, ops in fuzz_target["app"].openapi()["paths"].items()
        for method in ops
    }
    assert documented == set(ROUTES)


def _openapi_parts(app: Any, method: str, path: str) -> tuple[list[str], list[str]]:
    operation = app.openapi()["paths"][path][method.lower()]
    query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = body.get("schema", {}).get("$ref", "")
    fields = (
        list(app.openapi()["components"]["schemas"][ref.split("/")[-1]]["properties"])
        if ref
        else []
    )
    return query, fields


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_survives_hostile_input(fuzz_target, method: str, path: str) -> None:
    http, app, tenants = fuzz_target["http"], fuzz_target["app"], fuzz_target["tenants"]
    query_names, fields = _openapi_parts(app, method, path)
    if path.startswith("/admin"):
        auth = fuzz_target["admin"]
    elif path.startswith("/api/v1"):
        auth = {"Authorization": f"Bearer {tenants['token']['api_token']}"}
    else:
        auth = {}
    query_value = st.one_of(
        text, numbers.map(lambda n: n.text if isinstance(n, RawNumber) else str(n))
    )

    @FUZZ
    @given(
        path_value=st.one_of(st.just(tenants["victim"]["id"]), st.uuids().map(str), text),
        query=st.dictionaries(
            st.sampled_from([*query_names, "tenant_id"]), query_value, max_size=4
        ),
        body=st.one_of(st.just(b""), body_for(fields)),
        authenticated=st.sampled_from([True, True, True, False]),
    )
    def run(path_value: str, query: dict[str, str], body: bytes, authenticated: bool) -> None:
        url = path.replace("{tenant_id}", url_part(path_value)).replace(
            "{enhancement_id}", url_part(path_value)
        )
        if query:
            url += "?" + "&".join(f"{url_part(k)}={url_part(v)}" for k, v in query.items())
        headers = {"Content-Type": "application/json", **(auth if authenticated else {})}
        assert_handled(http.request(method, url, content=body, headers=headers))

    run()


@pytest.mark.parametrize("suffix", ["", "/resolved"], ids=["created", "resolved"])
@pytest.mark.parametrize("mode", ["hmac", "token"])
def test_signed_webhooks_survive_hostile_payloads(fuzz_target, mode: str, suffix: str) -> None:
    http, tenant = fuzz_target["http"], fuzz_target["tenants"][mode]

    @settings(FUZZ, max_examples=60)
    @given(body=webhook_payloads())
    def run(body: bytes) -> None:
        headers = webhook_headers(body, mode, tenant["webhook_secret"])  # type: ignore[arg-type]
        answer = http.post(
            f"/webhook/servicedesk/{tenant['id']}{suffix}", content=body, headers=headers
        )
        assert_handled(answer)
        assert answer.status_code not in (401, 403), answer.text  # the signature was right

    run()

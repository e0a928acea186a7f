"""Red-team probes kept in CI: what an attacker on the network tried against the service, each
now refused (issue 29), beside the fuzzing of tests/api/test_fuzz_routes.py.

Ray-free and bounded: the app in-process over ASGI, or under uvicorn on loopback where the socket
is the point (a body sent a byte a second). What only Ray and HAProxy show (the metrics agent's
and HAProxy's listeners, slow clients through HAProxy, client addresses behind it, the logs of a
whole Serve run) is tests/e2e/test_red_team_ray.py.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
import uuid
from collections.abc import Iterator

import httpx
import pytest

from core.sdp_url_policy import SdpUrlPolicy, SdpUrlRefused, parse_networks
from pipeline.note.feedback_links import FeedbackLinkSigner
from pipeline.sdp.transport import guarded_http_client
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.servicedesk.webhook_sender import webhook_headers
from simulators.serving import ServerHandle, run_in_thread
from tests.ray_free_api import BASE_URL, RayFreeApi, ray_free_api, ray_free_settings
from tests.slow_client import watch_slow_client

METRICS_TOKEN = "met_red-team"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON_ACCEPT = {"Accept": "application/json"}


@pytest.fixture(scope="module")
async def api(database, encryption_keys, data_dir):  # type: ignore[no-untyped-def]
    """Feedback links limited loosely: these probes are about what is refused, not how often."""
    async with ray_free_api(
        database, encryption_keys, data_dir, feedback_link_rate_per_minute=60_000
    ) as app:
        yield app


def _signer(encryption_keys: str) -> FeedbackLinkSigner:
    return FeedbackLinkSigner.from_encryption_keys(encryption_keys)


async def _enhancement(api: RayFreeApi, tenant) -> str:  # type: ignore[no-untyped-def]
    """A queued enhancement of the tenant (its row is what a feedback link names)."""
    body = json.dumps({"ticket_id": f"RT-{uuid.uuid4().hex[:6]}", "subject": "VPN down"})
    answer = await api.webhook(tenant, body.encode())
    assert answer.status_code == 202, answer.text
    return answer.json()["enhancement_id"]


async def _votes(owner_conn, enhancement_id: str) -> int:  # type: ignore[no-untyped-def]
    return await owner_conn.fetchval(
        "SELECT count(*) FROM enhancement_feedback WHERE enhancement_id = $1",
        uuid.UUID(enhancement_id),
    )


# ---------------------------------------------------------------- 9: readiness and the docs


async def test_ready_answers_a_load_balancer_and_details_only_an_operator(
    database, encryption_keys, data_dir
) -> None:
    async def probe() -> dict[str, dict[str, object]]:
        return {"dispatcher": {"ok": True, "quarantined": ["rt-victim"]}}

    settings = ray_free_settings(database, encryption_keys, data_dir, metrics_token=METRICS_TOKEN)
    assert settings.admin_token is not None
    state = ApiState.from_settings(settings, directory_ttl_s=0.0, readiness_probe=probe)
    transport = httpx.ASGITransport(app=create_api(state))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
                anonymous = await http.get("/api/v1/ready", headers=headers)
                assert anonymous.status_code == 200
                assert anonymous.json() == {"status": "ready"}, anonymous.text
            for token in (METRICS_TOKEN, settings.admin_token.get_secret_value()):
                operator = await http.get(
                    "/api/v1/ready", headers={"Authorization": f"Bearer {token}"}
                )
                assert operator.json()["components"]["dispatcher"]["quarantined"] == ["rt-victim"]
    finally:
        await state.close()


async def test_api_docs_load_nothing_from_another_origin(api_client: RayFreeApi) -> None:
    answer = await api_client.http.get("/docs")
    assert answer.status_code == 200
    assert "http://" not in answer.text and "https://" not in answer.text, answer.text
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs/assets/{asset}" in answer.text
        served = await api_client.http.get(f"/docs/assets/{asset}")
        assert served.status_code == 200 and len(served.content) > 100_000
    assert (await api_client.http.get("/redoc")).status_code == 404  # ReDoc needs its CDN


# ---------------------------------------------------------------- 7: identifiers matched whole


async def test_a_token_or_id_with_a_trailing_newline_is_refused(
    api: RayFreeApi, encryption_keys: str, owner_conn
) -> None:
    tenant = await api.tenant("rt-nl")
    enhancement_id = await _enhancement(api, tenant)
    token = _signer(encryption_keys).token(tenant.tenant_id, enhancement_id, "up")
    json_only = JSON_ACCEPT
    for suffix in ("%0a", "%0A", "%0d%0a", "%00", "%20"):
        shown = await api.http.get(f"/f/{token}{suffix}", headers=json_only)
        confirmed = await api.http.post(f"/f/{token}{suffix}", headers=json_only)
        assert (shown.status_code, confirmed.status_code) in {(400, 400), (422, 422)}, suffix
    assert await _votes(owner_conn, enhancement_id) == 0
    assert (await api.http.get(f"/f/{token}", headers=json_only)).status_code == 200
    created = await api.http.post(
        "/admin/tenants",
        json={"id": "rt-newline\n", "sdp_url": "https://sdp.example.com", "sdp_key": "k"},
        headers=api.admin,
    )
    assert created.status_code == 422, created.text
    webhook = await api.webhook(tenant, b'{"ticket_id": "T-1\\n"}')
    assert webhook.status_code == 422, webhook.text


# ---------------------------------------------------------------- 8: form bodies under the guard


async def test_a_nul_in_the_feedback_form_is_refused_before_the_database(
    api: RayFreeApi, encryption_keys: str, owner_conn, caplog
) -> None:
    tenant = await api.tenant("rt-nul")
    enhancement_id = await _enhancement(api, tenant)
    token = _signer(encryption_keys).token(tenant.tenant_id, enhancement_id, "4")
    for comment in ("a%00b", "%00", "%ED%A0%80"):
        page = await api.http.post(
            f"/f/{token}", content=f"comment={comment}", headers={**FORM, "Accept": "text/html"}
        )
        assert page.status_code in (400, 422), page.text
        assert page.headers["content-type"].startswith("text/html"), page.text
        assert 'id="error"' in page.text and "Nothing was recorded" in page.text
        data = await api.http.post(
            f"/f/{token}", content=f"comment={comment}", headers={**FORM, **JSON_ACCEPT}
        )
        assert data.status_code in (400, 422) and "detail" in data.json()
    nul = await api.http.post(
        f"/f/{token}", content="comment=a%00b", headers={**FORM, **JSON_ACCEPT}
    )
    assert nul.json()["detail"][0]["loc"] == ["body", "comment"]
    assert await _votes(owner_conn, enhancement_id) == 0
    assert not any(token in record.getMessage() for record in caplog.records)
    fine = await api.http.post(f"/f/{token}", content="comment=ok", headers=FORM)
    assert fine.status_code == 200 and await _votes(owner_conn, enhancement_id) == 1


# ---------------------------------------------------------------- 6: a signature and its route


@pytest.mark.parametrize("mode", ["hmac", "token"])
async def test_a_signed_body_is_accepted_on_its_own_route_only(
    api: RayFreeApi, owner_conn, mode: str
) -> None:
    tenant = await api.tenant("rt-route", mode=mode)
    ticket = f"RT-{uuid.uuid4().hex[:6]}"
    resolved = json.dumps(
        {
            "ticket_id": ticket,
            "subject": "Printer jam",
            "resolution": "Replaced the pickup roller",
            "resolved_at": "2026-12-01T10:00:00+00:00",
        }
    ).encode()
    headers = webhook_headers(resolved, mode, tenant.webhook_secret)  # type: ignore[arg-type]
    base = f"/webhook/servicedesk/{tenant.tenant_id}"
    assert (
        await api.http.post(f"{base}/resolved", content=resolved, headers=headers)
    ).status_code == 202
    replayed = await api.http.post(base, content=resolved, headers=headers)
    assert replayed.status_code == 422, replayed.text
    assert replayed.json()["detail"][0]["type"] == "wrong_route"
    v3 = json.dumps(
        {"request": {"id": ticket, "subject": "x", "resolved_time": {"value": "1700000000000"}}}
    ).encode()
    v3_headers = webhook_headers(v3, mode, tenant.webhook_secret)  # type: ignore[arg-type]
    assert (await api.http.post(base, content=v3, headers=v3_headers)).status_code == 422
    jobs = await owner_conn.fetchval(
        "SELECT count(*) FROM enhancements WHERE tenant_id = $1 AND ticket_id = $2",
        tenant.tenant_id,
        ticket,
    )
    assert jobs == 0  # no LLM job, no note
    created = json.dumps({"ticket_id": ticket, "subject": "Printer jam"}).encode()
    created_headers = webhook_headers(created, mode, tenant.webhook_secret)  # type: ignore[arg-type]
    assert (await api.http.post(base, content=created, headers=created_headers)).status_code == 202
    wrong = await api.http.post(f"{base}/resolved", content=created, headers=created_headers)
    assert wrong.status_code == 422, wrong.text


# ---------------------------------------------------------------- 4: who the client is


def _forged(i: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"198.18.{i // 250}.{i % 250 + 1}", **JSON_ACCEPT}


async def test_a_forged_forwarded_for_does_not_escape_the_client_limit(
    database, encryption_keys, data_dir
) -> None:
    async with ray_free_api(
        database, encryption_keys, data_dir, feedback_link_rate_per_minute=30
    ) as api:
        answers = [
            (await api.http.get("/f/not-a-token", headers=_forged(i))).status_code
            for i in range(60)
        ]
    assert answers.count(429) >= 50, answers  # a burst of 5, then refused: one client


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    database, encryption_keys, data_dir
) -> None:
    """The ASGI client's address is 127.0.0.1: the proxy this deployment trusts."""
    async with ray_free_api(
        database,
        encryption_keys,
        data_dir,
        feedback_link_rate_per_minute=30,
        trusted_proxies=["127.0.0.1/32"],
    ) as api:

        async def statuses(forwarded: str, n: int) -> list[int]:
            headers = {"X-Forwarded-For": forwarded, **JSON_ACCEPT}
            return [(await api.http.get("/f/x", headers=headers)).status_code for _ in range(n)]

        # what the client wrote, then what the trusted proxy appended: the latter counts
        greedy = await statuses("10.9.9.9, 203.0.113.7", 20)
        assert greedy.count(429) >= 14, greedy
        assert await statuses("203.0.113.8", 3) == [400, 400, 400]  # another client: unaffected
        # one IPv6 subscriber's /64 is one client
        first = await statuses("2001:db8:1:2::1", 5)
        assert 429 not in first
        assert 429 in await statuses("2001:db8:1:2::ffff", 3)


async def test_the_limiter_table_is_bounded_and_a_flood_of_newcomers_spares_known_clients(
    database, encryption_keys, data_dir
) -> None:
    from serve_app.guards.client_throttle import ClientThrottle

    settings = ray_free_settings(
        database,
        encryption_keys,
        data_dir,
        feedback_link_rate_per_minute=30,
        trusted_proxies=["127.0.0.1/32"],
    )
    now = [1000.0]  # a frozen clock: nobody's bucket refills while the flood runs
    clients = ClientThrottle(max_clients=50, clock=lambda: now[0])
    state = ApiState.from_settings(settings, directory_ttl_s=0.0, clients=clients)
    transport = httpx.ASGITransport(app=create_api(state))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            known = {"X-Forwarded-For": "203.0.113.50", **JSON_ACCEPT}
            assert (await http.get("/f/x", headers=known)).status_code == 400
            flood = [(await http.get("/f/x", headers=_forged(i))).status_code for i in range(400)]
            assert len(clients) <= 50
            assert flood.count(429) > 150, flood  # newcomers wait once their budget is spent
            assert (await http.get("/f/x", headers=known)).status_code == 400  # not locked out
            now[0] += 60  # a minute later the flood's entries have refilled: room again
            assert (await http.get("/f/x", headers=_forged(999))).status_code == 400
    finally:
        await state.close()


# ---------------------------------------------------------------- 5: SSRF


METADATA_URLS = [
    "http://100.100.100.200/latest/meta-data/",  # Alibaba: in 100.64.0.0/10
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS IPv6: in fc00::/7
    "http://[::ffff:100.100.100.200]/",
    "http://[2002:6464:64c8::]/",  # 6to4 form of 100.100.100.200
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.GOOGLE.INTERNAL./",
    "http://[fd20:ce::254]/",  # GCP IPv6
    "http://168.63.129.16/",  # Azure WireServer, a public address
    "http://192.0.0.192/",  # Oracle Classic
    "http://[fd00:c1::a9fe:a9fe]/",  # OCI IPv6
]


async def test_cloud_metadata_addresses_are_refused_whatever_the_operator_allows(
    database, encryption_keys, data_dir
) -> None:
    async with ray_free_api(
        database,
        encryption_keys,
        data_dir,
        sdp_allow_loopback=True,
        sdp_allowed_networks=["100.64.0.0/10", "fc00::/7", "192.0.0.0/24", "168.63.0.0/16"],
    ) as api:
        for url in METADATA_URLS:
            answer = await api.http.post(
                "/admin/tenants",
                json={"id": f"rt-md-{uuid.uuid4().hex[:6]}", "sdp_url": url, "sdp_key": "k"},
                headers=api.admin,
            )
            assert answer.status_code == 422, (url, answer.text)
            assert "sdp_url" in json.dumps(answer.json())


async def test_the_clusters_own_ranges_are_refused_unless_a_narrower_range_is_allowed(
    database, encryption_keys, data_dir
) -> None:
    async with ray_free_api(
        database,
        encryption_keys,
        data_dir,
        sdp_allowed_networks=["10.0.0.0/8", "10.96.0.50/32"],
        sdp_refused_networks=["10.96.0.0/12", "10.244.0.0/16"],
    ) as api:

        async def status(url: str) -> int:
            answer = await api.http.post(
                "/admin/tenants",
                json={"id": f"rt-k8s-{uuid.uuid4().hex[:6]}", "sdp_url": url, "sdp_key": "k"},
                headers=api.admin,
            )
            return answer.status_code

        assert await status("http://10.96.0.10:5432/") == 422  # a Service: PostgreSQL
        assert await status("http://10.244.3.7:8265/") == 422  # a pod: the Ray dashboard
        assert await status("http://10.96.0.50/") == 201  # listed on its own
        assert await status("http://10.20.0.9/") == 201  # on-premises SDP


async def test_a_name_that_resolves_to_a_metadata_address_is_refused_at_call_time(
    monkeypatch,
) -> None:
    import asyncio

    loop = asyncio.get_running_loop()

    async def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00:ec2::254", port, 0, 0))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    policy = SdpUrlPolicy(allowed_networks=parse_networks(["fc00::/7"]))
    async with guarded_http_client(policy) as http:
        with pytest.raises(SdpUrlRefused, match="metadata"):
            await http.get("http://sdp.rebind.example/api/v3/requests/1")


# ---------------------------------------------------------------- 3: slow bodies


@pytest.fixture(scope="module")
def slow_body_server(database, encryption_keys, data_dir) -> Iterator[ServerHandle]:
    settings = ray_free_settings(database, encryption_keys, data_dir, body_read_timeout_s=1.5)
    state = ApiState.from_settings(settings)
    with run_in_thread(create_api(state), lifespan="off") as server:
        yield server


def test_a_body_sent_a_byte_a_second_gets_408_and_the_connection_closed(
    slow_body_server: ServerHandle,
) -> None:
    port = urllib.parse.urlsplit(slow_body_server.url).port
    assert port is not None
    head = (
        b"POST /webhook/servicedesk/rt-slow HTTP/1.1\r\nHost: t\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    closed_after, answer = watch_slow_client(port, head, b" " * 99, watch_s=8.0)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert closed_after < 4.0, closed_after

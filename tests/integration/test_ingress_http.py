"""Every error path of the HTTP contract (routes, webhook auth, payloads), through real HTTP
to Serve."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest

from core.webhook_auth import sign
from db.pool import tenant_transaction
from tests.integration.harness import METRICS_AUTH

pytestmark = pytest.mark.ray


def _url(system, tenant_id: str, suffix: str = "") -> str:
    return f"{system.url}/webhook/servicedesk/{tenant_id}{suffix}"


async def _post_signed(
    system,
    tenant,
    body: bytes,
    *,
    ts: int | None = None,
    secret: str | None = None,
    suffix: str = "",
) -> httpx.Response:
    stamp = int(time.time()) if ts is None else ts
    headers = {
        "X-Timestamp": str(stamp),
        "X-Signature": sign(secret or tenant.webhook_secret, stamp, body),
        "Content-Type": "application/json",
    }
    return await system.http.post(
        _url(system, tenant.tenant_id, suffix), content=body, headers=headers
    )


def _assert_no_trace(response: httpx.Response) -> None:
    assert "Traceback" not in response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "detail" in response.json()


async def test_missing_credentials_is_401(system) -> None:
    tenant = await system.tenant("h401")
    response = await system.http.post(_url(system, tenant.tenant_id), json={"ticket_id": "1"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Missing signature"}


async def test_forgeries_get_identical_403s(system, pool) -> None:
    tenant = await system.tenant("h403")
    disabled = await system.tenant("h403d")
    await system.http.post(
        f"{system.url}/admin/tenants/{disabled.tenant_id}/disable", headers=system.admin
    )
    body = json.dumps({"ticket_id": "T-1", "subject": "x"}).encode()
    now = int(time.time())
    answers = [
        await _post_signed(system, tenant, body, secret="wrong-secret"),
        await _post_signed(system, tenant, body, ts=now - 301),  # stale
        await _post_signed(system, tenant, body, ts=now + 400),  # from the future
        await _post_signed(system, tenant, body, ts=now - 3600),  # a replay of an old delivery
        await system.http.post(
            _url(system, "no-such-tenant"),
            content=body,
            headers={"X-Timestamp": str(now), "X-Signature": sign("x", now, body)},
        ),
        await system.http.post(
            _url(system, "../../etc"),
            content=body,
            headers={"X-Timestamp": str(now), "X-Signature": sign("x", now, body)},
        ),
        await _post_signed(system, disabled, body),
        await system.http.post(
            _url(system, tenant.tenant_id),
            content=body,
            headers={"X-Webhook-Token": tenant.webhook_secret},
        ),  # wrong mode
    ]
    for response in answers:
        assert response.status_code in (403, 404), response.text
        if response.status_code == 403:
            assert response.json() == {"detail": "Invalid signature"}
    assert sum(r.status_code == 403 for r in answers) >= len(answers) - 1
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        assert await conn.fetchval("SELECT count(*) FROM enhancements") == 0


async def test_token_mode_and_base64_signatures(system) -> None:
    token_tenant = await system.tenant("htok", mode="token")
    ok = await token_tenant.send({"ticket_id": "TK-1", "subject": "Email bounce"})
    assert ok.status_code == 202
    bad = await system.http.post(
        _url(system, token_tenant.tenant_id),
        json={"ticket_id": "1"},
        headers={"X-Webhook-Token": "nope"},
    )
    assert bad.status_code == 403 and bad.json() == {"detail": "Invalid signature"}
    hmac_tenant = await system.tenant("hb64")
    response = await hmac_tenant.send({"ticket_id": "B64-1", "subject": "x"}, encoding="base64")
    assert response.status_code == 202


async def test_malformed_json_is_400_and_schema_errors_are_422(system) -> None:
    tenant = await system.tenant("h400")
    response = await _post_signed(system, tenant, b'{"ticket_id": "1",')
    assert response.status_code == 400
    _assert_no_trace(response)
    response = await _post_signed(system, tenant, json.dumps({"subject": "no id"}).encode())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "ticket_id"]
    response = await _post_signed(
        system, tenant, json.dumps({"request": {"subject": "x"}}).encode()
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "request", "id"]
    response = await _post_signed(system, tenant, json.dumps([1, 2]).encode())
    assert response.status_code == 422
    response = await _post_signed(system, tenant, b"\xff\xfe not utf8")
    assert response.status_code == 400


async def test_duplicate_delivery_is_one_enhancement(system, pool) -> None:
    tenant = await system.tenant("hdup")
    ticket = tenant.add_ticket(
        subject="Outlook keeps asking for password",
        description="Since the password change Outlook prompts again",
    )
    from simulators.servicedesk.webhook_sender import v3_payload

    first = await tenant.send(v3_payload(ticket))
    second = await tenant.send(v3_payload(ticket))
    assert first.status_code == 202 and first.json()["status"] == "queued"
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["enhancement_id"] == first.json()["enhancement_id"]
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        assert await conn.fetchval("SELECT count(*) FROM enhancements") == 1


async def test_rotated_secret_grace_period_over_http(system, owner_conn) -> None:
    tenant = await system.tenant("hrot")
    old_secret = tenant.webhook_secret
    rotated = await system.http.post(
        f"{system.url}/admin/tenants/{tenant.tenant_id}/rotate-secret", headers=system.admin
    )
    assert rotated.status_code == 200
    new_secret = rotated.json()["webhook_secret"]
    await asyncio.sleep(2.1)  # the ingress caches tenant credentials for 2 s
    body = json.dumps({"ticket_id": "G-1", "subject": "grace"}).encode()
    assert (await _post_signed(system, tenant, body, secret=old_secret)).status_code == 202
    assert (await _post_signed(system, tenant, body, secret=new_secret)).status_code == 200
    await owner_conn.execute(
        "UPDATE tenants SET webhook_secret_prev_expires_at = now() - interval '1 s' WHERE id = $1",
        tenant.tenant_id,
    )
    await asyncio.sleep(2.1)
    body2 = json.dumps({"ticket_id": "G-2", "subject": "after grace"}).encode()
    assert (await _post_signed(system, tenant, body2, secret=old_secret)).status_code == 403
    assert (await _post_signed(system, tenant, body2, secret=new_secret)).status_code == 202


async def test_body_too_large_is_413(system) -> None:
    tenant = await system.tenant("h413")
    body = json.dumps({"ticket_id": "L-1", "description": "x" * (1024 * 1024 + 10)}).encode()
    response = await _post_signed(system, tenant, body)
    assert response.status_code == 413
    _assert_no_trace(response)


async def test_per_tenant_throttle_is_429_with_retry_after(system) -> None:
    tenant = await system.tenant("h429", settings={"webhook_rate_per_minute": 6})
    other = await system.tenant("h429o")
    statuses = []
    for i in range(4):
        response = await tenant.send({"ticket_id": f"R-{i}", "subject": "flood"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            _assert_no_trace(response)
    assert statuses[0] == 202 and 429 in statuses
    assert (await other.send({"ticket_id": "calm", "subject": "x"})).status_code == 202


async def test_enhancement_api_tenant_scoping(system, pool) -> None:
    a = await system.tenant("hapia")
    b = await system.tenant("hapib")
    response = await a.send({"ticket_id": "A-1", "subject": "Printer jam on 2nd floor"})
    enhancement_id = response.json()["enhancement_id"]
    mine = await system.http.get(
        f"{system.url}/api/v1/enhancements/{enhancement_id}", headers=a.auth
    )
    assert mine.status_code == 200 and mine.json()["ticket_id"] == "A-1"
    theirs = await system.http.get(
        f"{system.url}/api/v1/enhancements/{enhancement_id}", headers=b.auth
    )
    assert theirs.status_code == 404
    unknown = await system.http.get(
        f"{system.url}/api/v1/enhancements/{uuid.uuid4()}", headers=a.auth
    )
    assert unknown.status_code == 404
    assert (await system.http.get(f"{system.url}/api/v1/enhancements")).status_code == 401
    bad = await system.http.get(
        f"{system.url}/api/v1/enhancements", headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 403
    listed = await system.http.get(
        f"{system.url}/api/v1/enhancements?ticket_id=A-1&limit=5", headers=a.auth
    )
    assert [e["id"] for e in listed.json()["items"]] == [enhancement_id]
    assert (
        await system.http.get(f"{system.url}/api/v1/enhancements?limit=0", headers=a.auth)
    ).status_code == 422

    cross = await system.http.get(
        f"{system.url}/api/v1/enhancements?tenant_id={b.tenant_id}", headers=a.auth
    )
    assert cross.status_code == 403
    async with tenant_transaction(pool, a.tenant_id) as conn:
        audit = await conn.fetch("SELECT * FROM audit_log WHERE action = 'cross_tenant_access'")
    assert len(audit) == 1 and audit[0]["target"] == f"tenant:{b.tenant_id}"


async def test_feedback_api_and_stats(system) -> None:
    tenant = await system.tenant("hfb")
    enhancement_id = (await tenant.send({"ticket_id": "F-1", "subject": "Disk full"})).json()[
        "enhancement_id"
    ]
    url = f"{system.url}/api/v1/feedback"
    for body in (
        {"enhancement_id": enhancement_id, "feedback_type": "thumbs_up"},
        {
            "ticket_id": "F-1",
            "feedback_type": "rating",
            "rating_value": 4,
            "technician_email": "tech@msp.example",
            "comment": "useful",
        },
        {"enhancement_id": enhancement_id, "feedback_type": "rating", "rating_value": 2},
        {"enhancement_id": enhancement_id, "feedback_type": "thumbs_down"},
    ):
        response = await system.http.post(url, json=body, headers=tenant.auth)
        assert response.status_code == 201, response.text
    for bad, field in (
        (
            {"enhancement_id": enhancement_id, "feedback_type": "rating", "rating_value": 7},
            "rating_value",
        ),
        ({"enhancement_id": enhancement_id, "feedback_type": "meh"}, "feedback_type"),
        ({"feedback_type": "thumbs_up"}, "body"),
    ):
        response = await system.http.post(url, json=bad, headers=tenant.auth)
        assert response.status_code == 422
        assert field in json.dumps(response.json()["detail"])
    other = await system.tenant("hfb2")
    response = await system.http.post(
        url,
        json={"enhancement_id": enhancement_id, "feedback_type": "thumbs_up"},
        headers=other.auth,
    )
    assert response.status_code == 404
    stats = (await system.http.get(f"{url}/stats", headers=tenant.auth)).json()
    assert stats["total_feedback"] == 4
    assert stats["counts"] == {"thumbs_up": 1, "thumbs_down": 1, "rating": 2}
    assert stats["average_rating"] == pytest.approx(3.0)
    assert stats["positive_percentage"] == pytest.approx(50.0)
    listed = (await system.http.get(f"{url}?feedback_type=rating", headers=tenant.auth)).json()
    assert {f["rating_value"] for f in listed["items"]} == {4, 2}
    future = (
        await system.http.get(f"{url}/stats?start_date=2999-01-01T00:00:00Z", headers=tenant.auth)
    ).json()
    assert future["total_feedback"] == 0 and future["positive_percentage"] is None


async def test_resolved_webhook_stores_history(system, pool) -> None:
    tenant = await system.tenant("hres")
    body = {
        "ticket_id": "RES-1",
        "subject": "Backup job failed",
        "description": "Veeam error",
        "resolution": "Freed space on the repository",
        "resolved_at": "2026-11-01T10:00:00Z",
    }
    # the new-ticket route refuses a resolved ticket: a signed body works on one route only
    response = await tenant.send(body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "wrong_route"
    from simulators.servicedesk.webhook_sender import send_webhook_async

    url = _url(system, tenant.tenant_id, "/resolved")
    stored = await send_webhook_async(url, body, "hmac", tenant.webhook_secret)
    assert stored.status_code == 202 and stored.json()["status"] == "stored"
    again = await send_webhook_async(url, body, "hmac", tenant.webhook_secret)
    assert again.json()["status"] == "updated"
    missing = await send_webhook_async(url, {"ticket_id": "RES-2"}, "hmac", tenant.webhook_secret)
    assert missing.status_code == 422
    async with tenant_transaction(pool, tenant.tenant_id) as conn:
        row = await conn.fetchrow("SELECT * FROM ticket_history WHERE ticket_id = 'RES-1'")
    assert row["resolution"] == "Freed space on the repository"


async def test_health_ready_metrics_and_docs(system) -> None:
    assert (await system.http.get(f"{system.url}/health")).json() == {"status": "healthy"}
    anonymous_ready = await system.http.get(f"{system.url}/api/v1/ready")
    assert anonymous_ready.json() == {"status": "ready"}, anonymous_ready.text
    ready = await system.http.get(f"{system.url}/api/v1/ready", headers=METRICS_AUTH)
    assert ready.status_code == 200, ready.text
    components = ready.json()["components"]
    assert components["database"]["ok"] and components["dispatcher"]["ok"]
    assert any(k.startswith("pool:Enhancer") for k in components)
    metrics = (await system.http.get(f"{system.url}/metrics", headers=METRICS_AUTH)).text
    assert "ai_agents_queue_depth" in metrics and "ai_agents_database_up 1.0" in metrics
    anonymous = await system.http.get(f"{system.url}/metrics")  # tenant ids are not public
    assert anonymous.status_code == 401 and "ai_agents_" not in anonymous.text
    spec = (await system.http.get(f"{system.url}/openapi.json")).json()
    for path in (
        "/webhook/servicedesk/{tenant_id}",
        "/api/v1/feedback/stats",
        "/admin/tenants/{tenant_id}/rotate-secret",
        "/api/v1/ready",
    ):
        assert path in spec["paths"]
    assert (await system.http.get(f"{system.url}/docs")).status_code == 200


async def test_admin_requires_admin_token(system) -> None:
    assert (await system.http.get(f"{system.url}/admin/tenants")).status_code == 401
    tenant = await system.tenant("hadm")
    response = await system.http.get(f"{system.url}/admin/tenants", headers=tenant.auth)
    assert response.status_code == 403
    listed = await system.http.get(f"{system.url}/admin/tenants", headers=system.admin)
    assert tenant.tenant_id in [t["id"] for t in listed.json()]
    assert tenant.webhook_secret not in listed.text
    patch = await system.http.patch(
        f"{system.url}/admin/tenants/{tenant.tenant_id}",
        json={"settings": {"note_max_words": 5}},
        headers=system.admin,
    )
    assert patch.status_code == 422  # below the 50-word floor
    dup = await system.http.post(
        f"{system.url}/admin/tenants",
        headers=system.admin,
        json={"id": tenant.tenant_id, "sdp_url": "http://x.example", "sdp_key": "k"},
    )
    assert dup.status_code == 409

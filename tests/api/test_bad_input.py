"""Issue 14 item 1: no input produces a 500. NUL and lone surrogates are a 422 naming the field
in every body, query and path; JSON that is too deep, has huge integers or is not UTF-8 is a 400;
dates that cannot be expressed in UTC are a 422."""

from __future__ import annotations

import json

import httpx
import pytest

NUL, SURROGATE = "\u0000", "\ud800"


def _json(value: object) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: a lone surrogate travels as \\ud800


def _assert_client_error(response: httpx.Response, status: int) -> object:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert detail and "Traceback" not in response.text
    return detail


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize("mode", ["hmac", "token"])
async def test_webhook_text_fields(api_client, bad: str, mode: str) -> None:
    tenant = await api_client.tenant("bad-wh", mode=mode)
    flat = {"ticket_id": "T-1", "subject": "VPN down", "description": "since 9am"}
    cases = [
        ({**flat, "subject": f"a{bad}b"}, ["body", "subject"]),
        ({**flat, "description": bad}, ["body", "description"]),
        ({**flat, "tags": ["ok", bad]}, ["body", "tags", 1]),
        ({"request": {"id": "9", "subject": bad}}, ["body", "request", "subject"]),
        ({"request": {"id": "9", "description": f"x{bad}"}}, ["body", "request", "description"]),
        ({"request": {"id": "9", "tags": [{"name": bad}]}}, ["body", "request", "tags", 0, "name"]),
    ]
    for payload, loc in cases:
        detail = _assert_client_error(await api_client.webhook(tenant, _json(payload)), 422)
        assert detail[0]["loc"] == loc and "not" in detail[0]["msg"]
    resolved = {**flat, "resolution": f"rebooted{bad}"}
    detail = _assert_client_error(
        await api_client.webhook(tenant, _json(resolved), "/resolved"), 422
    )
    assert detail[0]["loc"] == ["body", "resolution"]
    # the same bytes declared as text/plain still meet the same rules (the webhook's parser)
    detail = _assert_client_error(
        await api_client.webhook(tenant, _json(resolved), "/resolved", "text/plain"), 422
    )
    assert detail[0]["loc"] == ["body", "resolution"]


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_feedback_and_admin_text_fields(api_client, bad: str) -> None:
    tenant = await api_client.tenant("bad-fb")
    auth = {"Authorization": f"Bearer {tenant.api_token}"}
    base = {"ticket_id": "T-1", "feedback_type": "thumbs_up"}
    for field, value in [
        ("ticket_id", f"T{bad}"),
        ("comment", f"good{bad}"),
        ("technician_email", f"a{bad}@b.example"),
    ]:
        answer = await api_client.http.post(
            "/api/v1/feedback",
            content=_json({**base, field: value}),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert _assert_client_error(answer, 422)[0]["loc"] == ["body", field]
    for field in ("name", "sdp_portal"):
        spec = {
            "id": "bad-admin-x",
            "sdp_url": "https://sdp.example.com",
            "sdp_key": "k",
            field: f"x{bad}",
        }
        answer = await api_client.http.post(
            "/admin/tenants",
            content=_json(spec),
            headers={**api_client.admin, "Content-Type": "application/json"},
        )
        assert _assert_client_error(answer, 422)[0]["loc"] == ["body", field]
        answer = await api_client.http.patch(
            f"/admin/tenants/{tenant.tenant_id}",
            content=_json({field: bad}),
            headers={**api_client.admin, "Content-Type": "application/json"},
        )
        assert _assert_client_error(answer, 422)[0]["loc"] == ["body", field]


async def test_nul_in_query_and_path_parameters(api_client) -> None:
    tenant = await api_client.tenant("bad-q")
    auth = {"Authorization": f"Bearer {tenant.api_token}"}
    answer = await api_client.http.get("/api/v1/enhancements?ticket_id=a%00b", headers=auth)
    assert _assert_client_error(answer, 422)[0]["loc"] == ["query", "ticket_id"]
    for method, suffix in [
        ("PATCH", ""),
        ("POST", "/disable"),
        ("POST", "/rotate-secret"),
        ("POST", "/rotate-token"),
    ]:
        answer = await api_client.http.request(
            method,
            f"/admin/tenants/%00{suffix}",
            headers=api_client.admin,
            json={} if method == "PATCH" else None,
        )
        assert _assert_client_error(answer, 422)[0]["loc"] == ["path"]
    # a surrogate cannot be percent-encoded validly: it arrives as U+FFFD, an ordinary miss
    answer = await api_client.http.get("/api/v1/enhancements?ticket_id=%ED%A0%80", headers=auth)
    assert answer.status_code == 200 and answer.json()["items"] == []


async def test_deep_json_huge_numbers_and_bad_encoding_are_400(api_client) -> None:
    tenant = await api_client.tenant("bad-json", mode="token")
    auth = {"Authorization": f"Bearer {tenant.api_token}", "Content-Type": "application/json"}
    deep = b'{"ticket_id": "T-1", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    huge = b'{"ticket_id": "T-1", "priority": ' + b"9" * 5000 + b"}"
    just_too_big = b'{"ticket_id": "T-1", "priority": ' + str(2**63).encode() + b"}"
    cases = [
        (deep, "nested deeper"),
        (huge, "integer out of range"),
        (just_too_big, "integer out of range"),
        (b'{"ticket_id": "T-1", "priority": 1e999}', "number out of range"),
        (b'{"ticket_id": "T-1", "priority": NaN}', "NaN"),
        (b'{"ticket_id": "T-1", "subject": "\xed\xa0\x80"}', "not UTF-8"),
    ]
    for body, words in cases:
        detail = _assert_client_error(await api_client.webhook(tenant, body), 400)
        assert words in detail, detail
        detail = _assert_client_error(
            await api_client.http.post("/api/v1/feedback", content=body, headers=auth),
            400,
        )
        assert words in detail, detail
        detail = _assert_client_error(
            await api_client.http.post(
                "/admin/tenants",
                content=body,
                headers={**api_client.admin, "Content-Type": "application/json"},
            ),
            400,
        )
        assert words in detail, detail


async def test_out_of_range_dates_are_422(api_client) -> None:
    tenant = await api_client.tenant("bad-date")
    auth = {"Authorization": f"Bearer {tenant.api_token}"}
    absurd = "0001-01-01T00:00:00+14:00"
    for path, name in [
        ("/api/v1/enhancements", "since"),
        ("/api/v1/feedback", "start_date"),
        ("/api/v1/feedback", "end_date"),
        ("/api/v1/feedback/stats", "start_date"),
        ("/api/v1/feedback/stats", "end_date"),
    ]:
        answer = await api_client.http.get(f"{path}", params={name: absurd}, headers=auth)
        assert _assert_client_error(answer, 422)[0]["loc"] == ["query", name]
    body = _json({"ticket_id": "T-9", "subject": "s", "resolution": "r", "resolved_at": absurd})
    detail = _assert_client_error(await api_client.webhook(tenant, body, "/resolved"), 422)
    assert detail[0]["loc"] == ["body", "resolved_at"]
    body = _json({"ticket_id": "T-9", "subject": "s", "updated_at": "9999-12-31T23:59:59-14:00"})
    detail = _assert_client_error(await api_client.webhook(tenant, body), 422)
    assert detail[0]["loc"] == ["body", "updated_at"]
    # the edges that do fit are accepted
    fine = await api_client.http.get(
        "/api/v1/enhancements",
        params={"since": "0001-01-01T00:00:00+00:00"},
        headers=auth,
    )
    assert fine.status_code == 200, fine.text


async def test_signed_absurd_timestamp_is_403(api_client) -> None:
    """A correctly signed delivery whose timestamp no float can hold (only the tenant itself
    could send it) is an ordinary stale-timestamp refusal."""
    from core.webhook_auth import sign

    tenant = await api_client.tenant("bad-ts")
    body = _json({"ticket_id": "T-1", "subject": "s"})
    for stamp in ("1" * 400, "-" + "9" * 4000):
        signature = sign(tenant.webhook_secret, stamp, body)  # type: ignore[arg-type]
        headers = {
            "X-Timestamp": stamp,
            "Content-Type": "application/json",
            "X-Signature": signature,
        }
        answer = await api_client.http.post(
            f"/webhook/servicedesk/{tenant.tenant_id}",
            content=body,
            headers=headers,
        )
        assert _assert_client_error(answer, 403) == "Invalid signature"

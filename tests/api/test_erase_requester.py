"""`POST /admin/tenants/{id}/erase-requester`: the admin API's twin of `ai-agents tenant
erase-requester`, over the same TenantAdmin; the e-mail travels in the body."""

from __future__ import annotations

import json

import pytest

EMAIL = "dana.finance@client.example"


async def test_erases_a_requester_and_answers_what_was_erased(api_client, owner_conn) -> None:
    tenant = await api_client.tenant("erase-api")
    body = json.dumps(
        {
            "request": {
                "id": "4711",
                "subject": "VPN drops",
                "description": "<div>Since this morning</div>",
                "requester": {"name": "Dana Finance", "email_id": EMAIL},
            }
        }
    ).encode()
    accepted = await api_client.webhook(tenant, body)
    assert accepted.status_code == 202, accepted.text

    answer = await api_client.http.post(
        f"/admin/tenants/{tenant.tenant_id}/erase-requester",
        json={"email": EMAIL, "names": ["Dana"]},
        headers=api_client.admin,
    )

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["tenant_id"] == tenant.tenant_id and report["tickets"] == ["4711"]
    assert report["counts"]["jobs_erased"] == 1 and report["counts"]["jobs_stopped"] == 1
    assert report["names_searched"] == 2  # "Dana Finance" from the webhook, "Dana" given
    payload = await owner_conn.fetchval(
        "SELECT payload::text FROM enhancements WHERE tenant_id = $1", tenant.tenant_id
    )
    assert "dana" not in payload.lower()
    audit = await owner_conn.fetchval(
        "SELECT details::text FROM audit_log WHERE tenant_id = $1 AND action = 'requester.erase'",
        tenant.tenant_id,
    )
    assert audit is not None and "dana" not in audit.lower()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "not an e-mail"},
        {"email": "a\u0000b@client.example"},
        {"email": EMAIL, "names": ["ab"]},
        {"email": EMAIL, "names": "Dana"},
        {"email": EMAIL, "hint": "x"},
    ],
)
async def test_a_bad_request_is_a_422_that_erases_nothing(api_client, body) -> None:
    tenant = await api_client.tenant("erase-bad")
    answer = await api_client.http.post(
        f"/admin/tenants/{tenant.tenant_id}/erase-requester", json=body, headers=api_client.admin
    )
    assert answer.status_code == 422, answer.text


async def test_only_the_admin_may_erase(api_client) -> None:
    tenant = await api_client.tenant("erase-auth")
    url = f"/admin/tenants/{tenant.tenant_id}/erase-requester"
    anonymous = await api_client.http.post(url, json={"email": EMAIL})
    as_tenant = await api_client.http.post(
        url, json={"email": EMAIL}, headers={"Authorization": f"Bearer {tenant.api_token}"}
    )
    assert anonymous.status_code == 401 and as_tenant.status_code == 403

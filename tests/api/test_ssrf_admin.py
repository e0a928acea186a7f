"""Issue 14 item 4 over HTTP: the admin API refuses SDP URLs the service must never call, on
create and on PATCH, and never shows credentials a stored URL may carry."""

from __future__ import annotations

import pytest

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]:80/",
    "http://user:hunter2@sdp.example.com/",
    "http://127.0.0.1:5432/",
    "http://localhost:8265/",
    "http://[::1]/",
    "http://0.0.0.0:8000/",
    "http://2852039166/",
]  # 169.254.169.254 written as one number


@pytest.mark.parametrize("url", REFUSED)
async def test_refused_on_create_and_patch(api_client, url: str) -> None:
    tenant = await api_client.tenant("ssrf")
    created = await api_client.http.post(
        "/admin/tenants",
        headers=api_client.admin,
        json={"id": "ssrf-new", "sdp_url": url, "sdp_key": "k"},
    )
    patched = await api_client.http.patch(
        f"/admin/tenants/{tenant.tenant_id}",
        json={"sdp_url": url},
        headers=api_client.admin,
    )
    for answer in (created, patched):
        assert answer.status_code == 422, answer.text
        [error] = answer.json()["detail"]
        assert error["loc"][:2] == ["body", "sdp_url"]
        assert "hunter2" not in answer.text
    listed = await api_client.http.get("/admin/tenants", headers=api_client.admin)
    mine = next(t for t in listed.json() if t["id"] == tenant.tenant_id)
    assert mine["sdp_base_url"] == "https://sdp.example.com"


async def test_private_and_public_addresses_are_accepted(api_client) -> None:
    tenant = await api_client.tenant("ssrf-ok")
    for url in ("http://10.1.2.3:8080", "https://192.168.7.7", "https://sdp.acme.example"):
        answer = await api_client.http.patch(
            f"/admin/tenants/{tenant.tenant_id}",
            json={"sdp_url": url},
            headers=api_client.admin,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["sdp_base_url"] == url


async def test_stored_credentials_are_never_shown(api_client, owner_conn) -> None:
    """A URL stored before credentials were refused (or written to the database directly)."""
    tenant = await api_client.tenant("ssrf-legacy")
    await owner_conn.execute(
        "UPDATE tenants SET sdp_base_url = $2 WHERE id = $1",
        tenant.tenant_id,
        "http://admin:s3cret@sdp.acme.example:8080",
    )
    listed = await api_client.http.get("/admin/tenants", headers=api_client.admin)
    assert "s3cret" not in listed.text and "admin:" not in listed.text
    mine = next(t for t in listed.json() if t["id"] == tenant.tenant_id)
    assert mine["sdp_base_url"] == "http://***@sdp.acme.example:8080"


def test_cli_applies_the_same_rules(database, cli_env) -> None:
    """`ai-agents tenant create` from a fresh environment: loopback only when allowed."""
    from tests.cli_runner import assert_one_line_error, run

    strict = {k: v for k, v in cli_env.items() if k != "AI_AGENTS_SDP_ALLOW_LOOPBACK"}
    assert_one_line_error(
        run(
            strict,
            "tenant",
            "create",
            "cli-ssrf",
            "--sdp-url",
            "http://127.0.0.1:5432",
            "--sdp-key",
            "k",
        ),
        "AI_AGENTS_SDP_ALLOW_LOOPBACK",
    )
    assert_one_line_error(
        run(
            cli_env,
            "tenant",
            "create",
            "cli-ssrf",
            "--sdp-url",
            "http://169.254.169.254/latest/meta-data/",
            "--sdp-key",
            "k",
        ),
        "link-local",
    )
    assert_one_line_error(
        run(
            {**strict, "AI_AGENTS_SDP_ALLOWED_NETWORKS": "10.20.0.0/16"},
            "tenant",
            "create",
            "cli-ssrf",
            "--sdp-url",
            "http://10.99.0.1",
            "--sdp-key",
            "k",
        ),
        "AI_AGENTS_SDP_ALLOWED_NETWORKS",
    )
    created = run(
        cli_env, "tenant", "create", "cli-ssrf", "--sdp-url", "http://127.0.0.1:9", "--sdp-key", "k"
    )
    assert created.returncode == 0, created.stderr

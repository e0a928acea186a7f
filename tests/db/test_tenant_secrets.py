"""Secrets at rest, rotation with a grace period, token hashing, audit rows."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from core.webhook_auth import WebhookAuthError, sign, verify_webhook
from db.pool import tenant_transaction
from pipeline.tenancy.admin import TenantAdmin, TenantUpdate
from pipeline.tenancy.credential_cipher import CredentialCipher, hash_token, new_encryption_key
from serve_app.tenant_directory import TenantDirectory


async def test_raw_tenant_row_has_no_plaintext_secret(make_tenant, owner_conn) -> None:
    creds = await make_tenant("sec", sdp_key="SDP-PLAINTEXT-KEY-123")
    row = await owner_conn.fetchrow("SELECT * FROM tenants WHERE id = $1", creds.tenant_id)
    flat = " ".join(str(v) for v in dict(row).values())
    raw = b"".join(bytes(v) for v in dict(row).values() if isinstance(v, bytes | memoryview))
    for secret in (creds.webhook_secret, creds.api_token, "SDP-PLAINTEXT-KEY-123"):
        assert secret not in flat
        assert secret.encode() not in raw
    assert row["api_token_hash"] == hash_token(creds.api_token)


def _check(view, secret: str) -> None:
    body = b'{"ticket_id": "1"}'
    ts = str(int(time.time()))
    verify_webhook(
        {"x-timestamp": ts, "x-signature": sign(secret, ts, body)},
        body,
        view.webhook,
        now=time.time(),
    )


async def test_rotated_secret_and_predecessor_verify_only_during_grace(
    pool, cipher, make_tenant, owner_conn
) -> None:
    creds = await make_tenant("rot")
    admin = TenantAdmin(pool, cipher, secret_grace=timedelta(hours=24))
    rotated = await admin.rotate_secret(creds.tenant_id, actor="test")
    directory = TenantDirectory(pool, cipher, ttl_s=0)
    view = await directory.webhook_view(creds.tenant_id)
    _check(view, rotated.webhook_secret)
    _check(view, creds.webhook_secret)  # old secret still valid in the grace period
    await owner_conn.execute(
        "UPDATE tenants SET webhook_secret_prev_expires_at = now() - interval '1 second' "
        "WHERE id = $1",
        creds.tenant_id,
    )
    view = await directory.webhook_view(creds.tenant_id)
    _check(view, rotated.webhook_secret)
    with pytest.raises(WebhookAuthError) as err:
        _check(view, creds.webhook_secret)
    assert err.value.status_code == 403


async def test_rotated_token_replaces_old_one(pool, cipher, make_tenant) -> None:
    creds = await make_tenant("tok")
    directory = TenantDirectory(pool, cipher, ttl_s=0)
    assert await directory.tenant_for_token(creds.api_token) == creds.tenant_id
    new = await TenantAdmin(pool, cipher).rotate_token(creds.tenant_id, actor="test")
    assert await directory.tenant_for_token(creds.api_token) is None
    assert await directory.tenant_for_token(new.api_token) == creds.tenant_id


async def test_disabled_tenant_has_no_webhook_view(pool, cipher, make_tenant) -> None:
    creds = await make_tenant("dis")
    await TenantAdmin(pool, cipher).disable(creds.tenant_id, actor="test")
    assert await TenantDirectory(pool, cipher, ttl_s=0).webhook_view(creds.tenant_id) is None
    assert await TenantDirectory(pool, cipher, ttl_s=0).tenant_for_token(creds.api_token) is None


async def test_encryption_key_rotation_keeps_old_credentials_readable(
    pool, cipher, make_tenant, encryption_keys
) -> None:
    creds = await make_tenant("keyrot", sdp_key="the-sdp-key")
    newer = CredentialCipher.from_csv(new_encryption_key() + "," + encryption_keys)
    from pipeline.tenancy.runtime import load_tenant_runtime

    runtime = await load_tenant_runtime(pool, newer, creds.tenant_id)
    assert runtime.sdp_api_key == "the-sdp-key"
    assert "the-sdp-key" not in repr(runtime)


async def test_every_admin_write_is_audited(pool, cipher, make_tenant) -> None:
    creds = await make_tenant("aud")
    admin = TenantAdmin(pool, cipher)
    await admin.update(creds.tenant_id, TenantUpdate(name="Renamed"), actor="alice")
    await admin.rotate_token(creds.tenant_id, actor="alice")
    async with tenant_transaction(pool, creds.tenant_id) as conn:
        actions = [
            r["action"] for r in await conn.fetch("SELECT action FROM audit_log ORDER BY id")
        ]
    assert actions == ["tenant.create", "tenant.update", "tenant.rotate_token"]

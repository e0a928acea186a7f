"""Issue 14 item 3: create and PATCH validate every admin field with the same bounds, and every
tenant setting is bounded (PATCH used to store a 100,000-character portal that made the
tenant's jobs retry forever)."""

from __future__ import annotations

import pytest

from pipeline.tenancy.config import TenantSettings

BAD_FIELDS = [
    ("name", ""),
    ("name", "n" * 201),
    ("sdp_portal", "p" * 100_000),
    ("sdp_portal", "p" * 101),
    ("sdp_portal", "a/b"),
    ("sdp_portal", "../admin"),
    ("sdp_portal", "a b"),
    ("sdp_portal", ""),
    ("sdp_key", ""),
    ("sdp_key", "k" * 4097),
    ("sdp_key", "has space"),
    ("sdp_key", "a\r\nb"),
    ("sdp_url", "not a url"),
    ("sdp_url", "ftp://sdp.example.com"),
    ("sdp_url", "http://" + "h" * 3000 + ".example.com"),
    ("sdp_edition", "mainframe"),
    ("webhook_auth", "none"),
]
BAD_SETTINGS = [
    {"max_inflight": 100_001},
    {"max_inflight": 0},
    {"webhook_rate_per_minute": 10_000_001},
    {"llm_rate_per_minute": 1_000_001},
    {"sdp_rate_per_minute": 1_000_001},
    {"note_max_words": 5001},
    {"min_ticket_chars": 100_001},
    {"min_ticket_chars": -1},
    {"max_inflight": 2**62},
    {"unknown_setting": 1},
    {"retention_days_jobs": 0},
    {"retention_days_jobs": 3651},
    {"retention_days_feedback": -1},
    {"retention_days_audit": "forever"},
    {"retention_days_audit": 1e308},
    {"retention_days_llm_usage": 0},
    {"retention_days_llm_usage": 3651},
]


async def test_every_field_has_the_same_bounds_on_create_and_patch(api_client) -> None:
    tenant = await api_client.tenant("bounds")
    for field, value in BAD_FIELDS + [("settings", s) for s in BAD_SETTINGS]:
        spec = {
            "id": "bounds-new",
            "sdp_url": "https://sdp.example.com",
            "sdp_key": "k",
            field: value,
        }
        created = await api_client.http.post("/admin/tenants", json=spec, headers=api_client.admin)
        patched = await api_client.http.patch(
            f"/admin/tenants/{tenant.tenant_id}",
            json={field: value},
            headers=api_client.admin,
        )
        for answer in (created, patched):
            assert answer.status_code == 422, (field, value, answer.status_code, answer.text)
            assert answer.json()["detail"][0]["loc"][:2] == ["body", field], answer.text
    listed = await api_client.http.get("/admin/tenants", headers=api_client.admin)
    assert "bounds-new" not in {t["id"] for t in listed.json()}


async def test_values_at_the_bounds_are_accepted(api_client) -> None:
    tenant = await api_client.tenant("bounds-ok")
    change = {
        "name": "n" * 200,
        "sdp_portal": "it-desk_2.eu",
        "sdp_key": "1000.ab~cd!",
        "settings": {
            "max_inflight": 100_000,
            "webhook_rate_per_minute": 10_000_000,
            "llm_rate_per_minute": 1_000_000,
            "sdp_rate_per_minute": 1_000_000,
            "min_ticket_chars": 100_000,
            "retention_days_jobs": 0.001,
            "retention_days_feedback": 3650,
            "retention_days_llm_usage": 31,
        },
    }
    answer = await api_client.http.patch(
        f"/admin/tenants/{tenant.tenant_id}", json=change, headers=api_client.admin
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["max_inflight"] == 100_000
    # the days in effect: the tenant's own, else the service's (AI_AGENTS_RETENTION_DAYS_AUDIT)
    assert answer.json()["retention"] == {
        "jobs": 0.001,
        "feedback": 3650.0,
        "audit": 365.0,
        "llm_usage": 31.0,
    }


@pytest.mark.parametrize(
    "name",
    [
        n
        for n, f in TenantSettings.model_fields.items()
        if f.annotation in (int, int | None, float, float | None)
    ],
)
def test_every_numeric_tenant_setting_has_an_upper_bound(name: str) -> None:
    metadata = TenantSettings.model_fields[name].metadata
    assert any(getattr(m, "le", None) is not None for m in metadata), name


async def test_a_stored_settings_value_that_is_not_an_object_does_not_break_the_list(
    api_client, owner_conn
) -> None:
    """One tenant's bad stored data (written behind the API's back, or before validation
    existed) must not make `GET /admin/tenants` fail for every tenant."""
    broken, fine = await api_client.tenant("bad-settings"), await api_client.tenant("fine-settings")
    await owner_conn.execute(
        "UPDATE tenants SET settings = '\"not an object\"'::jsonb WHERE id = $1", broken.tenant_id
    )
    try:
        answer = await api_client.http.get("/admin/tenants", headers=api_client.admin)
        assert answer.status_code == 200, answer.text
        listed = {t["id"]: t for t in answer.json()}
        assert listed[broken.tenant_id]["settings"] == {}
        assert listed[fine.tenant_id]["settings"]["webhook_rate_per_minute"] == 1_000_000
    finally:
        await owner_conn.execute(
            "UPDATE tenants SET settings = '{}'::jsonb WHERE id = $1", broken.tenant_id
        )

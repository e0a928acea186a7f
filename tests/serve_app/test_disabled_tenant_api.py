"""Through the real HTTP API (no Ray, in-process over ASGI): a tenant setting out of bounds is
refused, and jobs still queued when a tenant is disabled end `skipped` with the reason, which
the API then shows."""

from __future__ import annotations

import uuid

from db.pool import tenant_transaction
from db.repositories.enhancements import enqueue
from tests.ray_free_api import ray_free_api


async def test_disabled_tenants_queued_jobs_show_as_skipped_in_the_api(
    database, encryption_keys, data_dir, pool, make_tenant
) -> None:
    creds = await make_tenant("apioff")
    tenant = creds.tenant_id
    async with tenant_transaction(pool, tenant) as conn:
        for n in range(3):
            await enqueue(
                conn,
                tenant_id=tenant,
                ticket_id=f"OFF-{n}",
                event="created",
                dedupe_key=uuid.uuid4().hex,
                payload={},
                trace_context=None,
                trace_id=None,
                notify=False,
            )
    admin = {"Authorization": "Bearer adm_disable_test"}
    tenant_auth = {"Authorization": f"Bearer {creds.api_token}"}
    async with ray_free_api(
        database, encryption_keys, data_dir, admin_token="adm_disable_test"
    ) as api:
        http = api.http
        # the value that once stalled every tenant's dispatch is refused when written
        response = await http.patch(
            f"/admin/tenants/{tenant}",
            headers=admin,
            json={"settings": {"max_inflight": 2147483648}},
        )
        assert response.status_code == 422, response.text
        assert "detail" in response.json()
        response = await http.patch(
            f"/admin/tenants/{tenant}", headers=admin, json={"settings": {"dispatch_weight": 5}}
        )
        assert response.status_code == 200, response.text
        assert response.json()["settings"]["dispatch_weight"] == 5

        assert (
            await http.post(f"/admin/tenants/{tenant}/disable", headers=admin)
        ).status_code == 200
        # what the dispatcher runs every reap tick (tests/pipeline/test_dispatcher_isolation)
        skipped = await pool.fetch("SELECT * FROM app_skip_disabled_jobs()")
        assert sum(r["tenant_id"] == tenant for r in skipped) == 3

        response = await http.patch(
            f"/admin/tenants/{tenant}", headers=admin, json={"status": "active"}
        )
        assert response.status_code == 200, response.text
        listed = await http.get("/api/v1/enhancements", headers=tenant_auth)
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert sorted((i["ticket_id"], i["status"], i["outcome"], i["error"]) for i in items) == [
            (f"OFF-{n}", "completed", "skipped", "tenant disabled") for n in range(3)
        ]

"""Persist first, then acknowledge: a 202 means a committed row, whatever happens next."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from core.settings import Settings
from pipeline.tenancy.credential_cipher import new_encryption_key
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.servicedesk.webhook_sender import send_webhook
from simulators.serving import run_in_thread
from tests.integration.harness import replica_pids, v3_payload

pytestmark = pytest.mark.ray


async def test_accepted_webhook_survives_killing_the_ingress(system, owner_conn) -> None:
    tenant = await system.tenant("kill")
    pids = replica_pids("Ingress", system.dashboard_url)
    assert pids, "no ingress replica found"
    # a ticket that exists in SDP, so the job can end with its note written
    ticket = tenant.add_ticket(
        subject="Server down", description="File server 10.0.0.5 stopped answering at 09:10"
    )
    response = await tenant.send(v3_payload(ticket))
    assert response.status_code == 202
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # right after the answer
    enhancement_id = response.json()["enhancement_id"]
    row = await owner_conn.fetchrow(
        "SELECT tenant_id, ticket_id FROM enhancements WHERE id = $1",
        __import__("uuid").UUID(enhancement_id),
    )
    assert row is not None and row["ticket_id"] == str(ticket["id"])
    # Serve replaces the replica and the job is still processed to the end.
    deadline = time.monotonic() + 60
    while True:
        try:
            done = await tenant.wait(enhancement_id, timeout_s=60)
            break
        except (httpx.HTTPError, AssertionError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
    assert done["status"] == "completed", (done.get("error"), done.get("stage"))


def test_database_down_is_503_with_retry_after_and_no_202() -> None:
    settings = Settings(
        database_url="postgresql://nobody@127.0.0.1:1/none",
        encryption_keys=new_encryption_key(),
        admin_token="adm",
        metrics_token="met",
    )
    state = ApiState.from_settings(settings)
    server = run_in_thread(create_api(state))
    try:
        response = send_webhook(
            f"{server.url}/webhook/servicedesk/acme", {"ticket_id": "1"}, "hmac", "secret"
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "Traceback" not in response.text and "nobody" not in response.text
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 200  # the process still serves
        ready = httpx.get(f"{server.url}/api/v1/ready", headers={"Authorization": "Bearer met"})
        assert ready.status_code == 503
        assert ready.json()["components"]["database"]["ok"] is False
        metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer met"}).text
        assert "ai_agents_database_up 0.0" in metrics
        api = httpx.get(f"{server.url}/api/v1/enhancements", headers={"Authorization": "Bearer x"})
        assert api.status_code == 503
    finally:
        server.stop()

"""No credential in any log line: a whole flow without Ray, logged at DEBUG through the service's
own JSON handler into a file, and every credential the flow created searched for in it.

The flow: tenants created, listed and rotated over the admin API, webhooks in both auth modes
(and forged ones), a real enhancement whose note carries feedback links (written to the SDP
simulator over HTTP), those links opened and confirmed, a form with a NUL, wrong and expired
tokens, `/metrics` and `/api/v1/ready` with and without their tokens. The secrets searched
for: webhook secrets (current and rotated), API tokens, the admin and metrics tokens, SDP keys,
the encryption key and every feedback-link token. The same scan over a Serve run's log files
is tests/e2e/test_red_team_ray.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.note.feedback_links import FeedbackLinkSigner
from pipeline.observability.logging_setup import JsonLogHandler, configure_logging
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.servicedesk.webhook_sender import webhook_headers
from simulators.serving import run_in_thread
from tests.ray_free_api import BASE_URL, ray_free_settings
from tests.workflow_runner import enhance_once

METRICS_TOKEN = "met_" + uuid.uuid4().hex


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The root logger as a replica has it (JSON, secret redaction), at DEBUG, into a file."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    path = tmp_path / "service.log"
    with path.open("w") as stream:
        configure_logging("DEBUG", stream=stream)
        try:
            yield path
        finally:
            for handler in [h for h in root.handlers if isinstance(h, JsonLogHandler)]:
                root.removeHandler(handler)
            for handler in saved_handlers:
                if handler not in root.handlers:
                    root.addHandler(handler)
            root.setLevel(saved_level)


async def test_a_whole_flow_logs_no_credential(
    log_file: Path,
    database,
    encryption_keys,
    data_dir,
    pool,
    cipher,
    owner_conn,
    make_tenant,
    caplog,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: set[str] = {METRICS_TOKEN, encryption_keys}
    sdp = SimulatorState()
    settings = ray_free_settings(
        database,
        encryption_keys,
        data_dir,
        metrics_token=METRICS_TOKEN,
        feedback_link_rate_per_minute=600,
    )
    assert settings.admin_token is not None
    admin_token = settings.admin_token.get_secret_value()
    secrets.add(admin_token)
    admin = {"Authorization": f"Bearer {admin_token}"}
    state = ApiState.from_settings(settings, directory_ttl_s=0.0)
    with run_in_thread(create_sdp_app(sdp)) as sdp_server:
        transport = httpx.ASGITransport(app=create_api(state))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            # tenants: one created over the admin API, one on the simulator (loopback SDP)
            sdp_key = "sdp-key-" + uuid.uuid4().hex
            created = await http.post(
                "/admin/tenants",
                json={
                    "id": f"logscan-{uuid.uuid4().hex[:6]}",
                    "sdp_url": "https://sdp.example.com",
                    "sdp_key": sdp_key,
                    "webhook_auth": "token",
                },
                headers=admin,
            )
            assert created.status_code == 201, created.text
            api_tenant = created.json()
            secrets |= {sdp_key, api_tenant["webhook_secret"], api_tenant["api_token"]}
            local = await make_tenant("logscan", sdp_url=sdp_server.url)
            secrets |= {local.webhook_secret or "", local.api_token or ""}
            secrets.add(await _sdp_key(owner_conn, cipher, local.tenant_id))

            await _webhooks(http, api_tenant["tenant_id"], "token", api_tenant["webhook_secret"])
            await _webhooks(http, local.tenant_id, "hmac", local.webhook_secret or "")

            rotated = await http.post(
                f"/admin/tenants/{local.tenant_id}/rotate-secret", headers=admin
            )
            token = await http.post(f"/admin/tenants/{local.tenant_id}/rotate-token", headers=admin)
            secrets |= {rotated.json()["webhook_secret"], token.json()["api_token"]}
            assert (await http.get("/admin/tenants", headers=admin)).status_code == 200
            assert (
                await http.get("/admin/tenants", headers={"Authorization": "Bearer x"})
            ).status_code == 403

            # a note with its feedback links, the links used, a bad form, bad tokens
            _, _, note = await enhance_once(
                pool,
                cipher,
                owner_conn,
                sdp,
                local.tenant_id,
                {"subject": "VPN drops", "description": "The VPN drops every hour at 10.1.2.3"},
                encryption_keys=encryption_keys,
                public_url=BASE_URL,
            )
            links = sorted(set(re.findall(r"/f/([A-Za-z0-9._-]+)", note)))
            assert len(links) == 7, note
            secrets |= set(links)
            await _use_links(http, links, encryption_keys, local.tenant_id)

            for headers in ({}, {"Authorization": f"Bearer {METRICS_TOKEN}"}, admin):
                await http.get("/metrics", headers=headers)
                await http.get("/api/v1/ready", headers=headers)
            await http.get(
                "/api/v1/enhancements",
                headers={"Authorization": f"Bearer {token.json()['api_token']}"},
            )
    await state.close()

    logged = await asyncio.to_thread(log_file.read_text)
    assert len(logged.splitlines()) >= 5  # the flow did log: webhooks, rejections, notes
    lines = logged.splitlines() + [
        json.dumps(vars(record), default=str) for record in caplog.records
    ]
    leaks = sorted(
        {
            secret[:12] + "..."
            for secret in secrets
            if secret and any(secret in line for line in lines)
        }
    )
    assert leaks == [], f"credentials in the logs (first characters shown): {leaks}"


async def _sdp_key(owner_conn, cipher, tenant_id: str) -> str:  # type: ignore[no-untyped-def]
    encrypted = await owner_conn.fetchval(
        "SELECT sdp_api_key_enc FROM tenants WHERE id = $1", tenant_id
    )
    return cipher.decrypt(encrypted)


async def _webhooks(http: httpx.AsyncClient, tenant_id: str, mode: str, secret: str) -> None:
    url = f"/webhook/servicedesk/{tenant_id}"
    body = json.dumps({"ticket_id": f"LS-{uuid.uuid4().hex[:6]}", "subject": "Disk full"}).encode()
    good = webhook_headers(body, mode, secret)  # type: ignore[arg-type]
    assert (await http.post(url, content=body, headers=good)).status_code == 202
    assert (await http.post(url, content=body, headers=good)).status_code == 200  # duplicate
    forged = webhook_headers(body, mode, secret[::-1])  # type: ignore[arg-type]
    assert (await http.post(url, content=body, headers=forged)).status_code == 403
    assert (await http.post(url, content=b"{}", headers={})).status_code == 401


async def _use_links(
    http: httpx.AsyncClient, links: list[str], encryption_keys: str, tenant_id: str
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for token in links[:3]:
        assert (await http.get(f"/f/{token}")).status_code == 200
        confirmed = await http.post(f"/f/{token}", content="comment=thanks", headers=form)
        assert confirmed.status_code == 200
    nul = await http.post(
        f"/f/{links[3]}", content="comment=bad%00byte", headers={**form, "Accept": "text/html"}
    )
    assert nul.status_code == 422
    expired = FeedbackLinkSigner.from_encryption_keys(encryption_keys, ttl_days=-1).token(
        tenant_id, uuid.uuid4(), "up"
    )
    assert (await http.get(f"/f/{expired}")).status_code == 410
    tampered = links[4][:-3] + ("AAA" if not links[4].endswith("AAA") else "BBB")
    assert (await http.post(f"/f/{tampered}", content="comment=x", headers=form)).status_code == 403
    await http.get(f"/f/{links[5]}%0a")  # refused since tokens are matched whole

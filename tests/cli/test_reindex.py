"""`ai-agents import` embeds as it writes and `ai-agents reindex` catches up on what is missing
or stale — the real executable against the session database, the real offline model and an
SDP simulator over loopback HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from simulators.servicedesk import SimulatorState, start_in_thread
from simulators.serving import ServerHandle
from tests.cli_runner import assert_one_line_error, run


@pytest.fixture(scope="module")
def sdp() -> Iterator[tuple[ServerHandle, SimulatorState]]:
    handle, state = start_in_thread(SimulatorState(seed=7))
    yield handle, state
    handle.stop()


async def test_import_embeds_and_reindex_repairs_missing_and_stale(
    database, cli_env, sdp, owner_conn
) -> None:
    handle, state = sdp
    tenant, key = f"cli-rx-{uuid.uuid4().hex[:6]}", "key-" + uuid.uuid4().hex
    state.add_portal(tenant, key, "onprem")
    created = run(
        cli_env, "tenant", "create", tenant, "--sdp-url", handle.url, "--sdp-key", key, "--json"
    )
    assert created.returncode == 0, created.stderr
    now = datetime.now(UTC)
    state.add_requests(
        tenant,
        [
            {
                "subject": f"VPN drops {i}",
                "description": "<p>Tunnel resets hourly</p>",
                "status": "Resolved",
                "resolution": "Raised DPD interval",
                "resolved_time": now - timedelta(days=1),
            }
            for i in range(12)
        ],
    )
    imported = run(cli_env, "import", "tickets", "--tenant", tenant, "--json")
    assert imported.returncode == 0, imported.stderr
    details = json.loads(imported.stdout)
    assert details["new"] == 12, details

    stored = await owner_conn.fetchval(
        "SELECT count(*) FROM ticket_embeddings WHERE tenant_id = $1", tenant
    )
    assert stored == 12
    await owner_conn.execute(  # three lost, one edited since it was embedded
        """DELETE FROM ticket_embeddings WHERE tenant_id = $1 AND ticket_id IN
               (SELECT ticket_id FROM ticket_embeddings WHERE tenant_id = $1
                ORDER BY ticket_id LIMIT 3)""",
        tenant,
    )
    await owner_conn.execute(
        """UPDATE ticket_history SET description = 'edited' WHERE tenant_id = $1 AND ticket_id =
               (SELECT max(ticket_id) FROM ticket_history WHERE tenant_id = $1)""",
        tenant,
    )

    first = run(cli_env, "reindex", "--tenant", tenant, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["tickets_total"], report["tickets_embedded"]) == (12, 4), report
    assert report["model"] == "wordllama/l2_supercat_256" and report["dimensions"] == 256

    again = run(cli_env, "reindex", "--tenant", tenant)
    assert again.returncode == 0, again.stderr
    assert "tickets: 0 embedded of 12" in again.stdout


def test_reindex_unknown_tenant_is_one_line(cli_env) -> None:
    assert_one_line_error(
        run(cli_env, "reindex", "--tenant", "no-such-tenant"), "unknown tenant 'no-such-tenant'"
    )

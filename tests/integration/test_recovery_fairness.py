"""Crash recovery (exactly one note per enhancement) and fairness across tenants."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter

import pytest

from local_stack.results import wait_until_idle
from tests.integration.harness import replica_pids

pytestmark = pytest.mark.ray


async def _wait_running(owner_conn, tenant_ids: list[str], at_least: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        running = await owner_conn.fetchval(
            "SELECT count(*) FROM enhancements WHERE status = 'running' "
            "AND stage = 'synthesis' AND tenant_id = ANY($1)",
            tenant_ids,
        )
        if running >= at_least:
            return
        assert time.monotonic() < deadline, "jobs never reached synthesis"
        await asyncio.sleep(0.1)


async def _assert_one_note_each(system, tenants, tickets, owner_conn) -> None:
    for tenant, ticket in tickets:
        notes = tenant.notes(ticket["id"])
        assert len(notes) == 1, (ticket["id"], len(notes))
    ids = [t.tenant_id for t in tenants]
    rows = await owner_conn.fetch(
        "SELECT status, count(*) FROM enhancements WHERE tenant_id = ANY($1) GROUP BY status", ids
    )
    assert {r["status"]: r["count"] for r in rows} == {"completed": len(tickets)}


async def _send_all(tenants, per_tenant: int, subject: str):
    tickets = []
    for tenant in tenants:
        for i in range(per_tenant):
            ticket = tenant.add_ticket(
                subject=f"{subject} {i}", description="Outlook cannot connect to Exchange server"
            )
            tickets.append((tenant, ticket))
    ids = await asyncio.gather(*(t.send_ticket(ticket) for t, ticket in tickets))
    return tickets, ids


async def test_killing_an_enhancer_replica_mid_job_loses_nothing(system, owner_conn) -> None:
    await wait_until_idle(owner_conn)
    tenants = [await system.tenant(f"crash{i}") for i in range(3)]
    system.llm.set_latency(1.5)
    try:
        tickets, ids = await _send_all(tenants, 4, "Mail outage")
        await _wait_running(owner_conn, [t.tenant_id for t in tenants], 3)
        pids = replica_pids("Enhancer", system.dashboard_url)
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    finally:
        system.llm.set_latency(0.05)
    for (tenant, _), enhancement_id in zip(tickets, ids, strict=True):
        row = await tenant.wait(enhancement_id, timeout_s=120)
        assert row["status"] == "completed", (row["status"], row["error"], row["stage"])
    await _assert_one_note_each(system, tenants, tickets, owner_conn)
    retried = await owner_conn.fetchval(
        "SELECT count(*) FROM enhancements WHERE tenant_id = ANY($1) AND attempts > 1",
        [t.tenant_id for t in tenants],
    )
    assert retried >= 1  # the killed jobs really ran again


async def test_restarting_the_whole_application_with_50_jobs_in_flight(system, owner_conn) -> None:
    """Every replica of the app (ingress, dispatcher, pools) is SIGKILLed at once; Serve's
    controller brings them back and the new dispatcher recovers what was running."""
    await wait_until_idle(owner_conn)
    tenants = [await system.tenant(f"restart{i}") for i in range(5)]
    system.llm.set_latency(1.0)
    try:
        tickets, ids = await _send_all(tenants, 10, "VPN drops")
        await _wait_running(owner_conn, [t.tenant_id for t in tenants], 5)
        for name in ("Dispatcher", "Enhancer", "ContextGatherer", "Synthesizer", "Ingress"):
            for pid in replica_pids(name, system.dashboard_url):
                os.kill(pid, signal.SIGKILL)
    finally:
        system.llm.set_latency(0.05)
    for (tenant, _), enhancement_id in zip(tickets, ids, strict=True):
        deadline = time.monotonic() + 180
        while True:
            try:
                row = await tenant.wait(enhancement_id, timeout_s=180)
                break
            except Exception:  # noqa: BLE001 - the ingress is restarting
                assert time.monotonic() < deadline
                await asyncio.sleep(1)
        assert row["status"] == "completed", (row["status"], row["error"], row["stage"])
    await _assert_one_note_each(system, tenants, tickets, owner_conn)


async def test_one_tenants_flood_does_not_starve_another(system, owner_conn) -> None:
    await wait_until_idle(owner_conn)
    fast = {
        "webhook_rate_per_minute": 60000,
        "llm_rate_per_minute": 60000,
        "sdp_rate_per_minute": 60000,
    }
    flood = await system.tenant("flood", settings=fast)
    calm = await system.tenant("calm", settings=fast)
    flood_tickets = [
        flood.add_ticket(
            subject="Disk space low on file server", description="Drive D: below 5% free on fs-01"
        )
        for _ in range(300)
    ]
    flood_ids = []
    for start in range(0, 300, 50):
        flood_ids += await asyncio.gather(
            *(flood.send_ticket(t) for t in flood_tickets[start : start + 50])
        )
    calm_ids = [
        await calm.send_ticket(
            calm.add_ticket(
                subject="Printer offline", description="HP LaserJet on floor 2 shows offline"
            )
        )
        for _ in range(5)
    ]
    for enhancement_id in calm_ids:
        row = await calm.wait(enhancement_id, timeout_s=120)
        assert row["status"] == "completed", (row["status"], row["error"], row["stage"])
    still_waiting = await owner_conn.fetchval(
        "SELECT count(*) FROM enhancements WHERE tenant_id = $1 AND status IN ('queued','running')",
        flood.tenant_id,
    )
    assert still_waiting > 0, "the flood drained before the calm tenant was served"
    await wait_until_idle(owner_conn, timeout_s=300)
    last = await owner_conn.fetch(
        "SELECT tenant_id, max(finished_at) AS done FROM enhancements "
        "WHERE tenant_id = ANY($1) GROUP BY tenant_id",
        [flood.tenant_id, calm.tenant_id],
    )
    done = {r["tenant_id"]: r["done"] for r in last}
    assert done[calm.tenant_id] < done[flood.tenant_id]
    statuses = Counter([(await flood.enhancement(i))["status"] for i in flood_ids[:20]])
    assert statuses == {"completed": 20}

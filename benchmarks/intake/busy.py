"""Helpers of ``benchmarks.intake`` for its floor and busy-pipeline configurations.

Kept apart so the intake script stays readable: starting the intake floor, giving the pipeline
a real backlog before intake is measured, and counting what the pipeline finished meanwhile
(the evidence that it was busy, not idle, while webhooks were timed).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.rig.serve_child import child_process, wait_http
from benchmarks.rig.stack import TicketSender
from core.ports import free_port
from local_stack.database import Database
from local_stack.simulators import Simulators
from local_stack.tenants import Tenant


def floor_env(db: Database, tenants: list[Tenant], workdir: Path) -> dict[str, str]:
    """What the floor app needs, in its environment: the owner URL and the tenants' secrets."""
    tenants_file = workdir / "floor-tenants.json"
    tenants_file.write_text(json.dumps([t.spec() for t in tenants]))
    return {
        "AI_AGENTS_FLOOR_DATABASE_URL": db.owner_url,
        "AI_AGENTS_FLOOR_TENANTS_FILE": str(tenants_file),
    }


@contextlib.contextmanager
def intake_floor(
    db: Database,
    tenants: list[Tenant],
    env: dict[str, str],
    workdir: Path,
    log_path: Path,
) -> Iterator[tuple[str, int]]:
    """``benchmarks.rig.intake_floor`` on a free port; yields (url, pid)."""
    floor = floor_env(db, tenants, workdir)
    port = free_port()
    with child_process(
        [
            sys.executable,
            "-m",
            "benchmarks.rig.intake_floor",
            "--port",
            str(port),
            "--tenants-file",
            floor["AI_AGENTS_FLOOR_TENANTS_FILE"],
        ],
        {**env, **floor},
        log_path,
    ) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health")
        yield url, proc.pid


async def enqueue_backlog(
    url: str, sims: Simulators, tenants: list[Tenant], count: int
) -> dict[str, Any]:
    """``count`` real tickets (created in the SDP simulator, so each ends in a note) sent as
    signed webhooks before intake is measured: the pipeline is busy from the first request."""
    sender = TicketSender(url, sims)
    started = time.monotonic()
    try:
        sent = await sender.burst(count, lambda i: tenants[i % len(tenants)])
    finally:
        await sender.close()
    return {
        "accepted": sum(1 for s in sent if s.enhancement_id),
        "seconds": round(time.monotonic() - started, 1),
    }


async def pipeline_progress(db: Database, since_epoch: float) -> dict[str, Any]:
    """Jobs the pipeline finished since ``since_epoch`` (per second) and what is still waiting."""
    import asyncpg

    conn = await asyncpg.connect(db.owner_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE finished_at >= to_timestamp($1)) AS finished, "
            "count(*) FILTER (WHERE finished_at >= to_timestamp($1) AND status = 'completed') "
            "AS completed, count(*) FILTER (WHERE status = 'queued') AS queued, "
            "count(*) FILTER (WHERE status = 'running') AS running FROM enhancements",
            since_epoch,
        )
    finally:
        await conn.close()
    seconds = max(1e-9, time.time() - since_epoch)
    return {
        "finished_per_s": row["finished"] / seconds,
        "completed_per_s": row["completed"] / seconds,
        "queued_after": row["queued"],
        "running_after": row["running"],
    }


def niceness(pids: dict[str, list[int]]) -> dict[str, list[int]]:
    """OS niceness of each deployment's replica processes (what the kernel schedules by)."""
    import psutil

    out: dict[str, list[int]] = {}
    for name, group in pids.items():
        for pid in group:
            with contextlib.suppress(psutil.Error):
                out.setdefault(name, []).append(psutil.Process(pid).nice())
    return out

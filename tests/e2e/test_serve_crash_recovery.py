"""Everything killed at once — `ai-agents serve`, every Ray process, HAProxy and the embedded
PostgreSQL — while webhooks are being processed; `ai-agents serve` restarted on the same data
directory finishes every accepted job with exactly one note each (counted by the SDP
simulator)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from benchmarks.rig.stack import TEST_LLM_KEY, TicketSender
from core.ports import free_port
from local_stack.database import Database, remove_data_dir, start_database
from local_stack.processes import descendants, stop_previous_run
from local_stack.results import fetch_jobs, wait_terminal
from local_stack.simulators import Simulators
from local_stack.tenants import create_tenants
from tests.e2e.serve_process import wait_until_ready

pytestmark = pytest.mark.ray

TICKETS = 24


def _start(data_dir: Path, port: int, dashboard_port: int, llm_url: str) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ["HOME"],
        "AI_AGENTS_LLM_BASE_URL": f"{llm_url}/api/v1",
        "AI_AGENTS_LLM_API_KEY": TEST_LLM_KEY,
        # the SDP simulator the tenants point at is on loopback
        "AI_AGENTS_SDP_ALLOW_LOOPBACK": "true",
    }
    return subprocess.Popen(
        [
            "ai-agents",
            "serve",
            "--port",
            str(port),
            "--dashboard-port",
            str(dashboard_port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_everything(serve: subprocess.Popen[str], db: Database) -> int:
    """SIGKILL the serve process, its whole tree and PostgreSQL with its backends, at once."""
    postmaster = db.postmaster_pid
    assert postmaster is not None
    victims = [serve.pid, postmaster]
    victims += [ref.pid for ref in descendants(serve.pid)]
    victims += [ref.pid for ref in descendants(postmaster)]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    serve.wait(30)
    return len(victims)


@pytest.mark.timeout(900)
async def test_every_accepted_job_gets_one_note_after_everything_is_killed() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="aac-", dir="/tmp"))
    # LLM answers spread over 0.2-3.8 s: the jobs finish over seconds, not all within one poll
    # of each other, so the kill lands mid-flight (some done, most not) however fast the rest is
    sims = Simulators(llm_latency_s=2.0, llm_jitter_pct=90)
    port, dashboard_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    first: subprocess.Popen[str] | None = None
    second: subprocess.Popen[str] | None = None
    try:
        db = await start_database(data_dir)  # the same embedded database serve uses
        tenants = await create_tenants(db, 2, "crash", sdp_url=sims.sdp_url, sims=sims)
        first = _start(data_dir, port, dashboard_port, sims.llm_url)
        await asyncio.to_thread(wait_until_ready, first, base)

        sender = TicketSender(base, sims)
        sent = await sender.burst(TICKETS, lambda i: tenants[i % len(tenants)], concurrency=8)
        await sender.close()
        assert all(s.status == 202 and s.enhancement_id for s in sent), sent
        ids = [s.enhancement_id for s in sent]

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # kill mid-flight: some done, most not
            done = [r for r in await fetch_jobs(db, ids) if r["status"] == "completed"]
            if len(done) >= 2:
                break
            await asyncio.sleep(0.2)
        assert 2 <= len(done) < TICKETS, len(done)
        killed = _kill_everything(first, db)
        assert killed > 10

        second = _start(data_dir, port, dashboard_port, sims.llm_url)
        await asyncio.to_thread(wait_until_ready, second, base)
        rows = await wait_terminal(db, ids, timeout_s=400)

        assert sorted(r["status"] for r in rows) == ["completed"] * TICKETS, [
            (r["ticket_id"], r["status"], r["error"]) for r in rows
        ]
        notes = sims.notes_by_ticket([t.id for t in tenants])
        for item in sent:
            on_ticket = notes.get((item.tenant_id, item.ticket_id), [])
            assert len(on_ticket) == 1, (item, len(on_ticket))
            assert item.enhancement_id in on_ticket[0]
        assert sum(len(v) for v in notes.values()) == TICKETS

        second.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(second.communicate, timeout=120)
        assert second.returncode == 0, stderr[-3000:]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(30)
        stop_previous_run(data_dir)
        sims.stop()
        remove_data_dir(data_dir)

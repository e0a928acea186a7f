"""`ai-agents reindex --ray` as an operator runs it: the installed executable, given only the
Jobs API address, submits `scripts.reindex` to the real local Ray cluster of the integration
stack; the job reads the database URL from the cluster's environment, embeds with the real
offline model, and its log carries the progress the CLI shows. One test: Ray jobs are slow to
start on two cores."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from ray.job_submission import JobSubmissionClient

from pipeline.batch.reindex_run import parse_progress_line

pytestmark = pytest.mark.ray

TICKETS = 200


async def ai_agents(*args: str) -> tuple[int, str, str]:
    """The installed `ai-agents` executable in a fresh environment (no AI_AGENTS_* settings:
    with --ray it needs only the Jobs API address)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    proc = await asyncio.create_subprocess_exec(
        "ai-agents", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(240):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_reindex_runs_as_a_ray_job_with_progress_and_resumes(system, owner_conn) -> None:
    tenant = (await system.tenant("rx-ray")).tenant_id
    await owner_conn.executemany(  # history written while embedding was unavailable
        """INSERT INTO ticket_history (tenant_id, ticket_id, subject, description, resolution)
           VALUES ($1, $2, $3, 'The tunnel resets every hour.', 'Raised the DPD interval.')""",
        [(tenant, f"{n:05d}", f"VPN drops at site {n}") for n in range(TICKETS)],
    )
    stored = "SELECT count(*) FROM ticket_embeddings WHERE tenant_id = $1"
    assert await owner_conn.fetchval(stored, tenant) == 0

    code, out, err = await ai_agents(
        "reindex", "--tenant", tenant, "--ray", "--address", system.dashboard_url, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["job_status"] == "SUCCEEDED"
    assert report["job_id"].startswith(f"reindex-{tenant}-")
    assert (report["tickets_total"], report["tickets_embedded"]) == (TICKETS, TICKETS)
    assert await owner_conn.fetchval(stored, tenant) == TICKETS
    logs = JobSubmissionClient(system.dashboard_url).get_job_logs(report["job_id"])
    progress = [p for p in map(parse_progress_line, logs.splitlines()) if p]
    assert progress and progress[-1] == ("tickets", TICKETS, TICKETS), logs
    assert JobSubmissionClient(system.dashboard_url).get_job_info(report["job_id"]).metadata == {
        "kind": "reindex",
        "tenant": tenant,
    }

    await owner_conn.execute(  # a run stopped half-way: half the vectors never written
        "DELETE FROM ticket_embeddings WHERE tenant_id = $1 AND ticket_id >= '00100'", tenant
    )
    code, out, err = await ai_agents(
        "reindex", "--tenant", tenant, "--ray", "--address", system.dashboard_url
    )
    assert code == 0, err
    assert "succeeded" in out and f"tickets: 100 embedded of {TICKETS}" in out, out
    assert await owner_conn.fetchval(stored, tenant) == TICKETS

    code, out, err = await ai_agents(
        "reindex", "--tenant", "no-such-tenant", "--ray", "--address", system.dashboard_url
    )
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: unknown tenant 'no-such-tenant'"
    ], err
    assert "Traceback" not in err

"""The reindex Ray Job's entry point (`python -m scripts.reindex`) run as the cluster runs it —
a subprocess whose only configuration is the cluster's environment (the database URL) —
against the session's real PostgreSQL and the real offline model. What it prints is what the
Ray dashboard shows and what `ai-agents reindex --ray` parses back; the Ray Job path itself
is tested in tests/integration/test_reindex_job.py."""

from __future__ import annotations

import os
import subprocess

from core.ports import free_port
from db.pool import tenant_transaction
from db.repositories.knowledge import upsert_resolved_ticket
from pipeline.batch.reindex_run import parse_progress_line, parse_result_line
from tests.cli_runner import assert_one_line_error, run

TICKETS = 150  # three batches of 64


def run_job(database, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    env["AI_AGENTS_DATABASE_URL"] = database.service_url
    return subprocess.run(
        ["python", "-m", "scripts.reindex", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def result_of(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, done.stderr[-2000:]
    results = [r for r in map(parse_result_line, done.stdout.splitlines()) if r is not None]
    assert len(results) == 1, done.stdout
    return results[0]


async def test_job_embeds_with_progress_then_resumes_skipping_fresh_vectors(
    database, pool, make_tenant, owner_conn
) -> None:
    tenant = (await make_tenant("rx-job")).tenant_id
    async with tenant_transaction(pool, tenant) as conn:
        for n in range(TICKETS):
            await upsert_resolved_ticket(
                conn,
                tenant_id=tenant,
                ticket_id=f"{n:05d}",
                subject=f"VPN drops every hour at site {n}",
                description="The tunnel resets and users lose their sessions.",
                resolution="Raised the dead peer detection interval.",
                priority=None,
                tags=[],
                resolved_at=None,
            )

    first = run_job(database, "--tenant", tenant)
    report = result_of(first)
    assert (report["tickets_total"], report["tickets_embedded"]) == (TICKETS, TICKETS)
    assert report["model"] == "wordllama/l2_supercat_256"
    progress = [p for p in map(parse_progress_line, first.stdout.splitlines()) if p]
    assert progress and progress[-1] == ("tickets", TICKETS, TICKETS), first.stdout
    assert all(total == TICKETS for kind, _, total in progress if kind == "tickets")
    assert f"reindexing {tenant} with wordllama/l2_supercat_256" in first.stdout
    stored = "SELECT count(*) FROM ticket_embeddings WHERE tenant_id = $1"
    assert await owner_conn.fetchval(stored, tenant) == TICKETS

    # an interrupted run is a run that left some rows without a fresh vector: drop 70
    await owner_conn.execute(
        """DELETE FROM ticket_embeddings WHERE tenant_id = $1 AND ticket_id >= '00080'""", tenant
    )
    resumed = result_of(run_job(database, "--tenant", tenant))
    assert (resumed["tickets_total"], resumed["tickets_embedded"]) == (TICKETS, 70)
    again = result_of(run_job(database, "--tenant", tenant))
    assert again["tickets_embedded"] == 0 and again["docs_embedded"] == 0
    assert await owner_conn.fetchval(stored, tenant) == TICKETS


def test_job_errors_are_one_readable_line(database) -> None:
    unknown = run_job(database, "--tenant", "no-such-tenant")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "reindex: error: unknown tenant 'no-such-tenant'"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    unset = subprocess.run(
        ["python", "-m", "scripts.reindex", "--tenant", "acme"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unset.returncode == 2
    assert "AI_AGENTS_DATABASE_URL is not set" in unset.stderr
    assert "Traceback" not in unset.stderr


def test_ray_mode_without_a_reachable_jobs_api_is_one_line(cli_env) -> None:
    port = free_port()  # reserved for this test and nothing listens on it
    assert_one_line_error(
        run(
            cli_env, "reindex", "--tenant", "acme", "--ray", "--address", f"http://127.0.0.1:{port}"
        ),
        f"cannot reach the Ray Jobs API at http://127.0.0.1:{port}",
    )

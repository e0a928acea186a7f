"""Batch re-enhancement as a real Ray Job on the test cluster: submitted through the Jobs API
(the CLI's way and the SDK's), run by the job driver against the session database, worked by
the live dispatcher and pools, written back to the SDP simulator."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import ray
from ray.job_submission import JobStatus, JobSubmissionClient

from local_stack.results import wait_until_idle
from pipeline.sdp.wire import parse_ticket_webhook
from simulators.servicedesk.webhook_sender import v3_payload
from tests.integration.harness import TenantHandle
from tests.integration.observability_support import metrics_port, samples, scrape

pytestmark = pytest.mark.ray

FAST = {"llm_rate_per_minute": 6000, "sdp_rate_per_minute": 6000, "webhook_rate_per_minute": 6000}
DESCRIPTION = "Outlook on the finance laptops cannot connect to the Exchange server since Monday"


async def ai_agents(*args: str) -> tuple[int, str, str]:
    """The installed `ai-agents` executable (no AI_AGENTS_* secrets: it only needs the
    Jobs API address)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    proc = await asyncio.create_subprocess_exec(
        "ai-agents", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def wait_job(client: JobSubmissionClient, job_id: str, timeout_s: float = 90) -> JobStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = await asyncio.to_thread(client.get_job_status, job_id)
        if status.is_terminal():
            return status
        assert time.monotonic() < deadline, f"{job_id} still {status}"
        await asyncio.sleep(0.3)


async def wait_for(owner_conn, sql: str, *args: Any, at_least: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await owner_conn.fetchval(sql, *args)
        if value >= at_least:
            return value
        assert time.monotonic() < deadline, f"{sql} stayed at {value}"
        await asyncio.sleep(0.1)


async def failed_originals(owner_conn, tenant: TenantHandle, count: int) -> dict[str, uuid.UUID]:
    """Tickets on the SDP simulator whose first enhancement failed (as after an LLM/SDP
    outage): ticket id -> enhancement id. Written directly so set-up costs no pipeline time."""
    originals = {}
    for i in range(count):
        ticket = tenant.add_ticket(subject=f"Mail outage {i}", description=DESCRIPTION)
        body = v3_payload(ticket)
        webhook = parse_ticket_webhook(body, json.dumps(body).encode())
        originals[ticket["id"]] = await owner_conn.fetchval(
            """INSERT INTO enhancements (tenant_id, ticket_id, dedupe_key, status, payload,
                   attempts, error, received_at, finished_at)
               VALUES ($1, $2, $3, 'failed', $4::jsonb, 5, 'LLM unavailable',
                       now() - interval '1 day', now() - interval '1 day')
               RETURNING id""",
            tenant.tenant_id,
            ticket["id"],
            webhook.dedupe_key(),
            json.dumps(webhook.model_dump(mode="json")),
        )
    return originals


async def scrape_reenhance_counters(
    tenant_id: str, *, until: Any, timeout_s: float = 15
) -> dict[str, float]:
    """`ray_ai_agents_reenhance_items_total` for one tenant, by outcome, as this session's
    Ray metrics agent exports it (what Prometheus scrapes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = await scrape(f"http://127.0.0.1:{metrics_port()}/metrics")
        counts: dict[str, float] = {}
        for labels, value in samples(text, "ray_ai_agents_reenhance_items_total"):
            if labels.get("tenant") == tenant_id:
                counts[labels["outcome"]] = counts.get(labels["outcome"], 0.0) + value
        if until(counts):
            return counts
        assert time.monotonic() < deadline, f"counters never reached the expected values: {counts}"
        await asyncio.sleep(1)


def entrypoint(*args: str) -> str:
    return shlex.join(["python", "-m", "scripts.reenhance", *args])


async def test_cli_job_supersedes_disliked_notes(system, owner_conn) -> None:
    await wait_until_idle(owner_conn)
    tenant = await system.tenant("reen-cli", settings=FAST)
    tickets = [
        tenant.add_ticket(subject=f"Outlook cannot connect {i}", description=DESCRIPTION)
        for i in range(3)
    ]
    ids = [await tenant.send_ticket(t) for t in tickets]
    for enhancement_id in ids:
        assert (await tenant.wait(enhancement_id))["status"] == "completed"
    for enhancement_id in ids[:2]:
        response = await system.http.post(
            f"{system.url}/api/v1/feedback",
            headers=tenant.auth,
            json={"enhancement_id": enhancement_id, "feedback_type": "thumbs_down"},
        )
        assert response.status_code == 201, response.text
    batch = f"reen-cli-{uuid.uuid4().hex[:6]}"
    common = [
        "reenhance",
        "--tenant",
        tenant.tenant_id,
        "--thumbs-down",
        "--submission-id",
        batch,
        "--address",
        system.dashboard_url,
        "--json",
    ]

    code, out, err = await ai_agents(*common, "--dry-run")
    assert code == 0, err
    plan = json.loads(out)
    assert (plan["candidates"], plan["estimate"]["llm_calls"]) == (2, 2)
    assert sorted(plan["sample_ticket_ids"]) == sorted(t["id"] for t in tickets[:2])
    assert (
        await owner_conn.fetchval("SELECT count(*) FROM enhancements WHERE batch_id = $1", batch)
        == 0
    )

    code, out, err = await ai_agents(*common)
    assert code == 0, err
    exported = await scrape_reenhance_counters(
        tenant.tenant_id, until=lambda c: c.get("completed") == 2.0
    )
    assert exported == {"enqueued": 2.0, "completed": 2.0}
    report = json.loads(out)
    assert report["job_status"] == "SUCCEEDED"
    assert report["progress"]["completed"] == 2 and report["progress"]["failed"] == 0
    client = JobSubmissionClient(system.dashboard_url)
    assert client.get_job_status(batch) == JobStatus.SUCCEEDED
    logs = client.get_job_logs(batch)
    assert "reenhance: progress total=2 done=2" in logs
    gcs = ray.get_runtime_context().gcs_address
    assert f"attached to the Ray cluster at {gcs}" in logs  # this cluster, not another one

    rows = await owner_conn.fetch(
        "SELECT id, ticket_id, supersedes, batch_id, priority, status FROM enhancements "
        "WHERE batch_id = $1",
        batch,
    )
    assert sorted(str(r["supersedes"]) for r in rows) == sorted(ids[:2])
    assert {(r["batch_id"], r["priority"], r["status"]) for r in rows} == {(batch, -1, "completed")}
    for row in rows:
        notes = tenant.notes(row["ticket_id"])
        assert len(notes) == 2
        newest = notes[-1].description
        assert f"supersedes the earlier note from enhancement {row['supersedes']}" in newest
        assert str(row["id"]) in newest
    assert len(tenant.notes(tickets[2]["id"])) == 1  # liked (no feedback): left alone

    code, out, err = await ai_agents(
        "reenhance", "status", batch, "--address", system.dashboard_url, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["progress"]["done"] == 2
    code, out, err = await ai_agents(
        "reenhance", "logs", batch, "--follow", "--address", system.dashboard_url
    )
    assert code == 0, err
    assert "reenhance: finished: 2/2 item(s): 2 completed" in out


async def test_stopped_job_resubmitted_with_the_same_id_finishes_without_duplicates(
    system, owner_conn
) -> None:
    await wait_until_idle(owner_conn)
    tenant = await system.tenant("reen-stop", settings={**FAST, "llm_rate_per_minute": 60})
    originals = await failed_originals(owner_conn, tenant, 16)
    batch = f"reen-stop-{uuid.uuid4().hex[:6]}"
    client = JobSubmissionClient(system.dashboard_url)
    client.submit_job(
        entrypoint=entrypoint(
            "--tenant",
            tenant.tenant_id,
            "--submission-id",
            batch,
            "--max-in-flight",
            "2",
            "--poll-s",
            "0.2",
        ),
        submission_id=batch,
    )
    await wait_for(
        owner_conn,
        "SELECT count(*) FROM enhancements WHERE batch_id = $1 AND status = 'completed'",
        batch,
        at_least=3,
    )
    code, out, err = await ai_agents(
        "reenhance", "stop", batch, "--address", system.dashboard_url, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["stopped"] is True
    assert await wait_job(client, batch) == JobStatus.STOPPED
    await wait_until_idle(owner_conn)  # the wave released before the stop still finishes
    enqueued = await owner_conn.fetchval(
        "SELECT count(*) FROM enhancements WHERE batch_id = $1", batch
    )
    assert 3 <= enqueued < len(originals), enqueued

    code, out, err = await ai_agents(
        "reenhance",
        "--tenant",
        tenant.tenant_id,
        "--status",
        "failed",
        "--submission-id",
        batch,
        "--max-in-flight",
        "4",
        "--address",
        system.dashboard_url,
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["progress"]["completed"] == len(originals)
    assert (report["submission_id"], report["job_id"]) == (batch, f"{batch}-run2")
    assert "15 to enqueue" not in client.get_job_logs(f"{batch}-run2")  # it resumed
    for ticket_id in originals:
        assert len(tenant.notes(ticket_id)) == 1, ticket_id
    per_original = await owner_conn.fetch(
        "SELECT supersedes, count(*) AS n FROM enhancements WHERE batch_id = $1 "
        "GROUP BY supersedes",
        batch,
    )
    assert {r["supersedes"]: r["n"] for r in per_original} == {v: 1 for v in originals.values()}


async def test_live_webhooks_finish_before_a_large_batch(system, owner_conn) -> None:
    await wait_until_idle(owner_conn)
    tenant = await system.tenant("reen-live", settings={**FAST, "llm_rate_per_minute": 180})
    originals = await failed_originals(owner_conn, tenant, 60)
    batch = f"reen-live-{uuid.uuid4().hex[:6]}"
    client = JobSubmissionClient(system.dashboard_url)
    client.submit_job(
        entrypoint=entrypoint(
            "--tenant",
            tenant.tenant_id,
            "--submission-id",
            batch,
            "--max-in-flight",
            "2",
            "--poll-s",
            "0.2",
        ),
        submission_id=batch,
    )
    await wait_for(
        owner_conn,
        "SELECT count(*) FROM enhancements WHERE batch_id = $1 AND status = 'completed'",
        batch,
        at_least=10,
    )
    live = [
        await tenant.send_ticket(
            tenant.add_ticket(subject=f"VPN down {i}", description=DESCRIPTION)
        )
        for i in range(3)
    ]
    for enhancement_id in live:
        assert (await tenant.wait(enhancement_id))["status"] == "completed"
    assert await wait_job(client, batch) == JobStatus.SUCCEEDED

    last_live = await owner_conn.fetchval(
        "SELECT max(finished_at) FROM enhancements WHERE id = ANY($1::uuid[])", live
    )
    after = await owner_conn.fetchval(
        "SELECT count(*) FROM enhancements WHERE batch_id = $1 AND finished_at > $2",
        batch,
        last_live,
    )
    statuses = await owner_conn.fetch(
        "SELECT status, count(*) AS n FROM enhancements WHERE batch_id = $1 GROUP BY status", batch
    )
    assert {r["status"]: r["n"] for r in statuses} == {"completed": len(originals)}
    # The live tickets did not queue behind the batch: most of it finished after them.
    assert after >= 20, after


async def test_job_errors_come_back_as_one_line(system) -> None:
    code, out, err = await ai_agents(
        "reenhance", "--tenant", "no-such-tenant", "--dry-run", "--address", system.dashboard_url
    )
    assert code != 0 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == ["error: unknown tenant 'no-such-tenant'"], err
    assert "Traceback" not in err


async def test_bulk_ticket_import_runs_as_a_ray_job(system, owner_conn) -> None:
    tenant = await system.tenant("imp-job", settings=FAST)
    now = datetime.now(UTC)
    system.sdp.add_requests(
        tenant.tenant_id,
        [
            {
                "subject": f"Printer jam {i}",
                "description": "<p>Tray 2 jams on every job</p>",
                "status": "Resolved",
                "resolution": "Replaced the pickup roller",
                "resolved_time": now - timedelta(days=i),
            }
            for i in range(12)
        ],
    )
    job = f"import-{tenant.tenant_id}"
    client = JobSubmissionClient(system.dashboard_url)
    client.submit_job(
        submission_id=job,
        entrypoint=shlex.join(
            ["python", "-m", "scripts.import_tickets", "--tenant", tenant.tenant_id, "--days", "30"]
        ),
    )
    assert await wait_job(client, job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
    result = json.loads(client.get_job_logs(job).split("import-tickets: result ")[-1])
    assert (result["fetched"], result["new"]) == (12, 12)
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM ticket_history WHERE tenant_id = $1", tenant.tenant_id
        )
        == 12
    )


async def test_a_crashed_job_is_reported_with_the_end_of_its_log(system, capsys) -> None:
    """A job that dies before it can say why (the entrypoint's interpreter lacks a package)
    is reported by the CLI with the last lines of its log and that log's last line as the
    error, not only "ended FAILED"."""
    from cli.ray_jobs import job_failure

    client = JobSubmissionClient(system.dashboard_url)
    job_id = f"crash-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(
        client.submit_job,
        entrypoint="python -c 'import no_such_module_for_the_test'",
        submission_id=job_id,
    )
    status = await wait_job(client, job_id)
    assert status == JobStatus.FAILED
    message = job_failure(client, job_id, status.value, "the dry run")
    assert message == (
        "the dry run ended FAILED: ModuleNotFoundError: No module named "
        "'no_such_module_for_the_test'"
    )
    printed = capsys.readouterr().err
    assert f"The last lines of {job_id}'s log:" in printed
    assert "  Traceback (most recent call last):" in printed

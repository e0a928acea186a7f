"""`ai-agents reenhance` without a Ray cluster: help, one-line errors, the arguments it hands
to the job, and `--local` against the session database. (Submitting through the Jobs API is
covered by tests/integration/test_reenhance.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.pool import tenant_transaction
from db.repositories import enhancements as jobs
from pipeline.batch.reenhance_job import (
    build_parser,
    filters_from_args,
    job_arguments,
    parse_ticket_ids,
    parse_when,
)
from pipeline.batch.reenhance_plan import ReenhanceFilters


@pytest.fixture(scope="module")
def cli_env(data_dir) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AI_AGENTS_", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"))
    }
    env["AI_AGENTS_DATA_DIR"] = str(data_dir)
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ai-agents", "reenhance", *args], env=env, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


@pytest.mark.parametrize("command", [[], ["status"], ["stop"], ["logs"]])
def test_every_command_has_help_with_an_example(cli_env, command: list[str]) -> None:
    result = run(cli_env, *command, "--help")
    assert result.returncode == 0
    assert "Example: ai-agents reenhance" in result.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        ([], "--tenant is required"),
        (["--tenant", "acme", "--status", "broken"], "status must be one of"),
        (["--tenant", "acme", "--max-rating", "0"], "between 1 and 5"),
        (["--tenant", "acme", "--since", "last tuesday"], "not a date"),
        (["--tenant", "acme", "--since", "1d", "--until", "2d"], "since must be before until"),
        (["--tenant", "acme", "--tickets-file", "/nonexistent/ids.txt"], "cannot read"),
        (["--tenant", "acme", "--address", "http://127.0.0.1:9"], "cannot reach the Ray Jobs API"),
        (["status", "some-batch", "--address", "http://127.0.0.1:9"], "cannot reach"),
    ],
)
def test_errors_are_one_line(cli_env, args: list[str], fragment: str) -> None:
    assert_one_line_error(run(cli_env, *args), fragment)


def test_empty_tickets_file_is_refused(cli_env, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# nothing here\n\n")
    assert_one_line_error(
        run(cli_env, "--tenant", "acme", "--tickets-file", str(ids)), "no ticket ids"
    )


def test_job_arguments_reproduce_the_filters() -> None:
    since = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    filters = ReenhanceFilters(
        tenant_id="acme",
        since=since,
        until=since + timedelta(days=7),
        statuses="any",
        thumbs_down=True,
        max_rating=2,
        ticket_ids=["101", "102"],
        limit=50,
    )
    args = job_arguments(filters, "batch-1", max_in_flight=3, fail_on_error=True)
    parsed = build_parser().parse_args(args)
    assert filters_from_args(parsed) == filters
    assert (parsed.submission_id, parsed.max_in_flight, parsed.fail_on_error) == (
        "batch-1",
        3,
        True,
    )
    # Feedback or a ticket list without --status means "whatever their status was".
    default = filters_from_args(
        build_parser().parse_args(["--tenant", "acme", "--submission-id", "b", "--tickets", "7"])
    )
    assert default.statuses == "any"
    plain = filters_from_args(build_parser().parse_args(["--tenant", "a", "--submission-id", "b"]))
    assert plain.statuses == "failed"


def test_dates_and_ticket_lists() -> None:
    now = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
    assert parse_when("7d", now=now) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_when("90m", now=now) == datetime(2024, 5, 8, 10, 30, tzinfo=UTC)
    assert parse_when("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_when("2024-05-01T08:00+02:00").utcoffset() == timedelta(hours=2)
    assert parse_ticket_ids("101, 102\n# a comment\n103 # inline\n\n101;104") == [
        "101",
        "102",
        "103",
        "104",
    ]


async def test_local_dry_run_and_an_empty_local_run(
    cli_env, pool, make_tenant, tmp_path: Path
) -> None:
    tenant = (await make_tenant("reen-cli")).tenant_id
    async with tenant_transaction(pool, tenant) as conn:
        for ticket in ("501", "502", "503"):
            queued = await jobs.enqueue(
                conn,
                tenant_id=tenant,
                ticket_id=ticket,
                event="created",
                dedupe_key=uuid.uuid4().hex,
                notify=False,
                trace_context=None,
                trace_id=None,
                payload={"ticket": {"ticket_id": ticket}, "has_description": True},
            )
            await conn.execute("UPDATE enhancements SET status = 'failed' WHERE id = $1", queued.id)
    ids = tmp_path / "ids.txt"
    ids.write_text("501\n503\n999\n")
    result = run(
        cli_env, "--tenant", tenant, "--tickets-file", str(ids), "--local", "--dry-run", "--json"
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["candidates"] == 2 and plan["estimate"]["llm_calls"] == 2
    assert sorted(plan["sample_ticket_ids"]) == ["501", "503"]

    text = run(cli_env, "--tenant", tenant, "--status", "context_only", "--local")
    assert text.returncode == 0, text.stderr
    assert f"for tenant {tenant}: SUCCEEDED" in text.stdout and "total" in text.stdout
    async with tenant_transaction(pool, tenant) as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM enhancements WHERE batch_id IS NOT NULL") == 0
        )

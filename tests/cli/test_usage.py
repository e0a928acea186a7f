"""`ai-agents usage`: the real executable on the session's database, with enhancements and
usage-ledger rows written the way the Enhancer writes them; JSON, CSV for a billing system, a
table, and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime

import pytest

from pipeline.llm.spend import LLMSpend
from pipeline.models import AttemptUsage
from tests.cli_runner import assert_one_line_error, run


@pytest.fixture(scope="module")
async def billed(pool, owner_conn, make_tenant) -> tuple[str, str]:
    """One tenant with two runs of one ticket (a re-enhancement), three billed attempts, and a
    second tenant with nothing."""
    busy = (await make_tenant("cu")).tenant_id
    idle = (await make_tenant("cui")).tenant_id
    spend = LLMSpend(pool)
    for outcome, attempts in (("llm", 2), ("context_only", 1)):
        run_id = await owner_conn.fetchval(
            """INSERT INTO enhancements (tenant_id, ticket_id, dedupe_key, payload, status,
                   outcome, finished_at)
               VALUES ($1, '42', $2, '{}', 'completed', $3, now()) RETURNING id""",
            busy,
            uuid.uuid4().hex,
            outcome,
        )
        await spend.record(
            busy,
            str(run_id),
            [
                AttemptUsage(
                    model="vendor/m", outcome="ok", prompt_tokens=900, completion_tokens=100,
                    cost_usd=0.0125,
                )
            ] * attempts,
        )  # fmt: skip
    return busy, idle


def test_json_for_one_tenant(cli_env, billed) -> None:
    busy, _ = billed
    result = run(cli_env, "usage", "--tenant", busy, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    [row] = report["tenants"]
    assert row["tenant_id"] == busy and row["tickets"] == 1
    assert row["enhancements"]["llm"] == 1 and row["enhancements"]["context_only"] == 1
    assert row["llm_attempts"] == 3 and row["prompt_tokens"] == 2700
    assert row["cost_usd"] == pytest.approx(0.0375)
    assert report["start"].startswith(datetime.now(UTC).strftime("%Y-%m-01T00:00:00"))


def test_csv_has_a_line_per_tenant_for_a_billing_system(cli_env, billed) -> None:
    busy, idle = billed
    result = run(cli_env, "usage", "--csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    by_tenant = {r["tenant_id"]: r for r in rows}
    assert len(by_tenant) == len(rows)  # one line each
    assert by_tenant[busy]["llm_attempts"] == "3"
    assert by_tenant[busy]["total_tokens"] == "3000"
    assert by_tenant[busy]["cost_usd"] == "0.037500"
    assert by_tenant[idle]["cost_usd"] == "0.000000" and by_tenant[idle]["tickets"] == "0"


def test_a_past_month_and_the_table(cli_env, billed) -> None:
    busy, _ = billed
    result = run(cli_env, "usage", "--tenant", busy, "--month", "2025-11", "--json")
    report = json.loads(result.stdout)
    assert report["start"] == "2025-11-01T00:00:00Z" and report["end"] == "2025-12-01T00:00:00Z"
    assert report["tenants"][0]["cost_usd"] == 0
    table = run({**cli_env, "COLUMNS": "160"}, "usage", "--tenant", busy)
    assert table.returncode == 0 and busy in table.stdout and "0.0375" in table.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--month", "2026-13"), "not a month"),
        (("--tenant", "no-such-tenant-x"), "unknown tenant 'no-such-tenant-x'"),
        (("--json", "--csv"), "choose one"),
    ],
)
def test_errors_are_one_line(cli_env, args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(run(cli_env, "usage", *args), fragment)

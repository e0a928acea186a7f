"""The real `ai-agents import ...` executable against the session database and an SDP
simulator served from this process over loopback HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from simulators.servicedesk import SimulatorState, start_in_thread
from simulators.serving import ServerHandle
from tests.cli_runner import assert_one_line_error, run


@pytest.fixture(scope="module")
def sdp() -> Iterator[tuple[ServerHandle, SimulatorState]]:
    handle, state = start_in_thread(SimulatorState(seed=5))
    yield handle, state
    handle.stop()


@pytest.fixture(scope="module")
def tenant(database, cli_env, sdp) -> str:
    """Created through the CLI, pointing at its own simulator portal."""
    handle, state = sdp
    tenant_id, key = f"cli-imp-{uuid.uuid4().hex[:6]}", "key-" + uuid.uuid4().hex
    state.add_portal(tenant_id, key, "onprem")
    created = run(
        cli_env, "tenant", "create", tenant_id, "--sdp-url", handle.url, "--sdp-key", key, "--json"
    )
    assert created.returncode == 0, created.stderr
    now = datetime.now(UTC)
    state.add_requests(
        tenant_id,
        [
            {
                "subject": f"Outlook crash {i}",
                "description": "<p>Outlook closes on start</p>",
                "status": "Resolved" if i % 2 else "Closed",
                "resolution": "Rebuilt the profile",
                "resolved_time": now - timedelta(days=i % 60),
            }
            for i in range(120)
        ],
    )
    state.add_requests(tenant_id, [{"subject": f"open {i}", "status": "Open"} for i in range(5)])
    return tenant_id


def test_import_tickets_json_then_rerun_shows_throttling(cli_env, sdp, tenant) -> None:
    result = run(cli_env, "import", "tickets", "--tenant", tenant, "--days", "90", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["fetched"], report["new"], report["updated"], report["skipped"]) == (
        120,
        120,
        0,
        0,
    )

    sdp[1].set_faults(tenant, http_429_next=1, retry_after_s=1)
    again = run(cli_env, "import", "tickets", "--tenant", tenant, "--status", "Resolved")
    assert again.returncode == 0, again.stderr
    assert "fetched 60, new 0, updated 60, skipped 0" in again.stdout
    assert "throttled 1" in again.stdout
    assert "SDP rate limit (HTTP 429): waiting 1.0s" in again.stderr
    assert "Traceback" not in again.stderr


def test_import_kb_and_assets(cli_env, tenant, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "outlook.md").write_text("# Outlook profile rebuild\nDelete the OST file.\n")
    (kb / "empty.txt").write_text("")
    (kb / "logo.png").write_bytes(b"\x89PNG")
    result = run(cli_env, "import", "kb", "--tenant", tenant, str(kb), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["files"], report["new"], report["skipped"]) == (3, 1, 2)
    assert {i["item"] for i in report["skipped_items"]} == {"empty.txt", "logo.png"}

    inventory = tmp_path / "assets.csv"
    inventory.write_text(
        "cidr,hostname,role\n10.0.0.0/24,lan,LAN\n999.1.1.1,x,\n"
        "10.0.0.0/33,y,\n,z,\n10.0.0.9,pc9,Desktop\n"
    )
    plain = run(cli_env, "import", "assets", "--tenant", tenant, str(inventory))
    assert plain.returncode == 0, plain.stderr
    assert "new 2" in plain.stdout
    warnings = plain.stderr.splitlines()
    assert [w.split(":")[1].strip() for w in warnings] == ["line 3", "line 4", "line 5"]
    assert "missing address" in warnings[2]

    strict = run(
        cli_env, "import", "assets", "--tenant", tenant, str(inventory), "--strict", "--json"
    )
    assert strict.returncode == 1
    assert json.loads(strict.stdout)["written"] is False
    assert_one_line_error(strict, "3 bad row(s)")


def test_import_errors_are_one_line(cli_env, tenant, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("address\n10.0.0.1\n")
    for args in (["tickets"], ["kb", str(tmp_path)], ["assets", str(tmp_path / "a.csv")]):
        result = run(cli_env, "import", *args, "--tenant", "no-such-tenant", "--json")
        assert_one_line_error(result, "unknown tenant 'no-such-tenant'")
        assert result.stdout == ""
    assert_one_line_error(
        run(cli_env, "import", "kb", "--tenant", tenant, str(tmp_path / "nope")), "not a directory"
    )
    assert_one_line_error(run(cli_env, "import", "tickets"), "--tenant is required")
    assert_one_line_error(
        run(cli_env, "import", "tickets", "--tenant", tenant, "--days", "0"),
        "--days must be at least 1",
    )


def test_import_tickets_sdp_failure_is_one_line(cli_env, sdp) -> None:
    tenant_id = f"cli-bad-{uuid.uuid4().hex[:6]}"
    created = run(
        cli_env,
        "tenant",
        "create",
        tenant_id,
        "--sdp-url",
        sdp[0].url,
        "--sdp-key",
        "not-a-known-key",
    )
    assert created.returncode == 0, created.stderr
    result = run(cli_env, "import", "tickets", "--tenant", tenant_id, "--json")
    assert_one_line_error(result, "SDP failed before any ticket was fetched")
    assert "not-a-known-key" not in result.stderr + result.stdout
    partial = json.loads(result.stdout)
    assert partial["fetched"] == 0 and partial["error"].startswith("SDP failed")


def test_import_help_has_examples(cli_env) -> None:
    for command in ("tickets", "kb", "assets"):
        result = run(cli_env, "import", command, "--help")
        assert result.returncode == 0
        assert "Example" in result.stdout, command

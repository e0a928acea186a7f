"""The main job, as a user runs it: `ai-agents demo` on a fresh data directory.

It starts its own database, simulators and Ray in a subprocess, so it runs in the Ray side lane
(`tests/lanes.py`), possibly next to the integration session's Ray.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from core.ports import free_port
from tests import lanes

pytestmark = lanes.ray_side


def _serve_controller_logged(text: str, driver_pid: int) -> bool:
    """Whether the Serve controller of the Ray cluster that the process ``driver_pid`` started
    logged ``text`` (Ray's own word on which ingress it ran). Ray names a session after the
    PID of the process that started it (``session_<date>_<pid>``); other Ray clusters may be
    running on the machine (the suite's other Ray lane) and log the same."""
    sessions = Path(tempfile.gettempdir(), "ray").glob(f"session_*_{driver_pid}")
    logs = [log for session in sessions for log in session.glob("logs/serve/controller_*.log")]
    assert logs, f"no Serve controller log of a Ray session started by process {driver_pid}"
    return any(text in log.read_text(errors="replace") for log in logs)


def test_demo_runs_end_to_end_and_notes_cite_demo_data() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="aad-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_AGENTS_", "RAY_"))}
    port = free_port()
    try:
        proc = subprocess.Popen(
            [
                "ai-agents",
                "demo",
                "--tickets",
                "6",
                "--json",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                "--dashboard-port",
                str(free_port()),
                "--llm-latency",
                "0.2",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()  # (as subprocess.run's timeout would)
            raise
        assert proc.returncode == 0, stderr[-3000:]
        report = json.loads(stdout)  # --json: one document, nothing else on stdout
        summary = report["summary"]
        assert summary["tickets"] == 6
        assert summary["statuses"] == {"completed (llm)": 6}
        assert summary["notes_written"] == 6
        assert report["imported"]["acme"]["tickets"] >= 150
        for note in report["notes"]:
            assert note["private"] is True
            cited = set(re.findall(r"#(\d+)", note["text"]))
            expected_tickets = {
                c.split(":", 1)[1] for c in note["expected_citations"] if c.startswith("ticket:")
            }
            assert cited & expected_tickets, (note["ticket_id"], cited, expected_tickets)
            assert note["enhancement_id"] in note["text"]
            links = note["feedback_links"]  # AI_AGENTS_PUBLIC_URL: this run's Serve app
            assert [link["label"] for link in links] == [
                "👍 Helpful",
                "👎 Not helpful",
                "1",
                "2",
                "3",
                "4",
                "5",
            ]
            assert all(link["url"].startswith(f"http://127.0.0.1:{port}/f/v1.") for link in links)
        # the SDP simulator resolved every ticket (two batches of three, tenants alternating);
        # the service judged each note
        hits = summary["suggestion_hits"]
        assert {t: h["resolved"] for t, h in hits.items()} == {"acme": 3, "globex": 3}
        for tenant_hits in hits.values():
            assert 0 <= tenant_hits["hits"] <= 3
            assert tenant_hits["hit_rate"] == round(tenant_hits["hits"] / 3, 3)
        judged = [e for e in report["enhancements"] if "suggestion_hit" in e]
        assert len(judged) == 6 and all(isinstance(e["suggestion_hit"], bool) for e in judged)
        # the first batch's resolutions refit the ranking; the second batch was ranked by it
        learning = summary["learning"]
        assert learning["refit"]["installed"] is True, learning["refit"]
        before, after = learning["before"], learning["after"]
        assert (before["notes"], before["resolved"], after["notes"], after["resolved"]) == (
            3,
            3,
            3,
            3,
        )
        assert after["models"] == [f"deployment #{learning['refit']['model_id']}"]
        for phase in (before, after):
            assert 0 <= phase["ece"] <= 1 and 0 <= phase["mean_confidence"] <= 1
            assert phase["max_words"] <= 250  # the goal for the demo's notes
        assert (data_dir / "local-secrets.json").stat().st_mode & 0o777 == 0o600

        # the default ingress is Ray 2.60's HAProxy front with direct ingress
        assert _serve_controller_logged("HAProxy is enabled", proc.pid)

        # Re-running reuses the data directory and its tenants; this time webhooks arrive
        # through Serve's proxy actor, and --keep-running leaves everything up until SIGTERM.
        # Exit code 0 after the signal means every ticket of the run was enhanced with a note.
        _demo_keeps_running_until_sigterm(data_dir, env)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _demo_keeps_running_until_sigterm(data_dir: Path, env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            "ai-agents",
            "demo",
            "--tickets",
            "1",
            "--keep-running",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--dashboard-port",
            str(free_port()),
            "--llm-latency",
            "0.1",
            "--ingress",
            "proxy",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        for line in proc.stderr:  # progress and the "Running" line go to stderr
            lines.append(line)
            if "Running; Ctrl-C stops everything." in line:
                break
        else:
            raise AssertionError("demo ended without staying up:\n" + "".join(lines[-30:]))
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "healthy"}
        assert not _serve_controller_logged("HAProxy is enabled", proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=120)
        assert proc.returncode == 0, rest[-3000:]
        with pytest.raises(httpx.ConnectError):  # everything was stopped
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()

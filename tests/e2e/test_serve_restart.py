"""`ai-agents serve` as an operator runs it: ready over HTTP behind HAProxy, restarted after a
`kill -9` of its main process, used from a second terminal, and stopped cleanly by SIGTERM.

The restart runs on the same data directory and the same HTTP port, the way a systemd unit
starts it: through its virtualenv's path (`<venv>/bin/ai-agents serve`), the venv not
activated, with a PATH whose `python` is the system's (no asyncpg, none of our packages). Then,
as from a new shell (only PATH and HOME), `ai-agents health` finds the service through the live
run's record in the data directory and `ai-agents reenhance` submits a Ray Job through the
token-protected Jobs API: the job's `python -m scripts.reenhance` must find the service's own
interpreter, not the system's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from core.ports import free_port
from local_stack.database import remove_data_dir
from local_stack.processes import RUN_RECORD_FILE, RunRecord, is_alive, stop_previous_run
from tests.e2e.serve_process import wait_until_ready

pytestmark = pytest.mark.ray


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's: none of this project's dependencies


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
    except OSError:
        return f"{pid}: gone"


def _new_shell(**extra: str) -> dict[str, str]:
    """What a second terminal has: no AI_AGENTS_*, no RAY_* variables (the checkout under test
    stays importable: a worktree sets PYTHONPATH)."""
    shell = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"]}
    if os.environ.get("PYTHONPATH"):
        shell["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return {**shell, **extra}


def _unit_like_venv(root: Path) -> tuple[Path, dict[str, str]]:
    """``<venv>/bin/ai-agents`` (the console script pip would write) and the environment of a
    systemd unit: a PATH whose ``python`` is the system's, lacking our packages."""
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    script = venv / "bin" / "ai-agents"
    script.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom cli.main import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    fake_bin = root / "system-bin"
    fake_bin.mkdir()
    (fake_bin / "python").symlink_to(SYSTEM_PYTHON)
    check = subprocess.run([SYSTEM_PYTHON, "-c", "import asyncpg"], capture_output=True)
    assert check.returncode != 0, "the system python must lack asyncpg for this test to mean it"
    return script, _new_shell(PATH=f"{fake_bin}:/usr/bin:/bin")


def _start(
    data_dir: Path,
    port: int,
    dashboard_port: int,
    executable: str = "ai-agents",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            executable,
            "serve",
            "--port",
            str(port),
            "--dashboard-port",
            str(dashboard_port),
            "--data-dir",
            str(data_dir),
        ],
        env=env or _new_shell(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ai-agents", *args], env=_new_shell(**env), capture_output=True, text=True, timeout=300
    )


def test_restart_after_kill_9_then_cli_from_a_second_terminal() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="aar-", dir="/tmp"))
    port, dashboard_port = free_port(), free_port()
    base, dashboard = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}"
    first = _start(data_dir, port, dashboard_port)
    second: subprocess.Popen[str] | None = None
    try:
        assert set(wait_until_ready(first, base).json()) == {"status"}  # a load balancer's view
        admin_token = json.loads((data_dir / "local-secrets.json").read_text())["admin_token"]
        components = wait_until_ready(first, base, token=admin_token).json()["components"]
        assert components["database"]["ok"] and components["dispatcher"]["ok"]
        assert {
            f"pool:{p}"
            for p in ("Ingress", "Dispatcher", "Enhancer", "ContextGatherer", "Synthesizer")
        } <= set(components)
        # an unsigned webhook is refused by the app itself, through HAProxy
        refused = httpx.post(f"{base}/webhook/servicedesk/nobody", content=b"{}", timeout=10)
        assert refused.status_code in (401, 403), refused.text
        record = RunRecord.load(data_dir / RUN_RECORD_FILE)
        assert record is not None and record.owner.pid == first.pid
        assert record.processes  # Ray's processes (and HAProxy) were recorded
        first.send_signal(signal.SIGKILL)  # the main process alone
        first.wait(30)

        unit_script, unit_env = _unit_like_venv(data_dir)
        second = _start(data_dir, port, dashboard_port, str(unit_script), unit_env)
        # run 1's orphaned Ingress may answer /ready until run 2 has stopped it: wait for run 2's
        # record (written after it stopped what run 1 left), then for run 2 to be ready
        deadline = time.monotonic() + 120
        while (now := RunRecord.load(data_dir / RUN_RECORD_FILE)) is None or (
            now.owner.pid != second.pid
        ):
            assert second.poll() is None and time.monotonic() < deadline, "run 2 never took over"
            time.sleep(0.5)
        wait_until_ready(second, base)
        left = [ref for ref in record.processes if is_alive(ref)]  # nothing of run 1 left
        assert not left, [_cmdline(ref.pid) for ref in left]
        assert RunRecord.load(data_dir / RUN_RECORD_FILE).owner.pid == second.pid

        # a second terminal: the API and dashboard ports `serve --port/--dashboard-port` chose
        # come from the live run's record, the token from ~/.ray
        assert RunRecord.load(data_dir / RUN_RECORD_FILE).dashboard_url == dashboard
        health = _cli("health", "--json", "--data-dir", str(data_dir))
        report = json.loads(health.stdout)
        statuses = {c["name"]: c["status"] for c in report["checks"]}
        assert health.returncode == 0, (statuses, health.stderr[-2000:])
        assert {k: statuses[k] for k in ("ray", "serve", "api_health", "api_ready")} == {
            "ray": "ok",
            "serve": "ok",
            "api_health": "ok",
            "api_ready": "ok",
        }, report

        created = _cli(
            "tenant",
            "create",
            "restart-t",
            "--sdp-url",
            "https://sdp.example.com",
            "--sdp-key",
            "k",
            "--data-dir",
            str(data_dir),
            "--json",
        )
        assert created.returncode == 0, created.stderr
        plan = _cli(
            "reenhance",
            "--tenant",
            "restart-t",
            "--status",
            "failed",
            "--dry-run",
            "--address",
            dashboard,
            "--json",
        )
        assert plan.returncode == 0, plan.stderr[-2000:]
        assert json.loads(plan.stdout)["candidates"] == 0
        # the cluster does require the token: without it the same command is refused
        refused = _cli(
            "reenhance", "status", "any-batch", "--address", dashboard, RAY_AUTH_MODE="disabled"
        )
        assert refused.returncode == 1 and "Authentication" in refused.stderr, refused.stderr

        stopping = time.monotonic()
        second.send_signal(signal.SIGTERM)
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr[-3000:]
        assert time.monotonic() - stopping < 60  # local HAProxy mode drains 5 s, not 30
        assert not (data_dir / RUN_RECORD_FILE).exists()  # a clean stop leaves no record
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health", timeout=5)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
        stop_previous_run(data_dir)
        remove_data_dir(data_dir)

"""Restarting the embedded database right after PostgreSQL was killed, on real processes."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from db.embedded import wait_for_killed_postmaster


def test_waits_while_the_killed_postmaster_is_a_zombie(tmp_path: Path) -> None:
    # A killed process we have not reaped yet is a zombie: what a SIGKILLed postmaster is until
    # PID 1 reaps it.
    postmaster = subprocess.Popen(["sleep", "600"])
    (tmp_path / "postmaster.pid").write_text(f"{postmaster.pid}\n{tmp_path}\n")
    postmaster.send_signal(signal.SIGKILL)
    time.sleep(0.2)
    reaper = threading.Timer(0.8, postmaster.wait)
    reaper.start()
    started = time.monotonic()
    wait_for_killed_postmaster(tmp_path, timeout_s=20)
    waited = time.monotonic() - started
    reaper.join()
    assert 0.5 <= waited < 10, waited  # returned once the zombie was reaped, not before


def test_returns_at_once_for_a_live_server_a_gone_one_or_none(tmp_path: Path) -> None:
    alive = subprocess.Popen(["sleep", "600"])
    try:
        for content in (f"{alive.pid}\n", "999999999\n", "not a pid\n", None):
            pid_file = tmp_path / "postmaster.pid"
            pid_file.unlink(missing_ok=True)
            if content is not None:
                pid_file.write_text(content)
            started = time.monotonic()
            wait_for_killed_postmaster(tmp_path, timeout_s=20)
            assert time.monotonic() - started < 1, content
    finally:
        alive.kill()
        alive.wait()

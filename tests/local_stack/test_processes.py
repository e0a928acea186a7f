"""The run record that lets a new `ai-agents serve` stop what a `kill -9`ed one left behind,
exercised on real processes: an "owner" that starts a child in its own session (as Serve's
HAProxyManager starts HAProxy) and records its tree, then dies by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from local_stack.processes import (
    RUN_RECORD_FILE,
    ProcessRef,
    RunRecord,
    is_alive,
    live_run_record,
    process_ref,
    stop_previous_run,
)

OWNER = textwrap.dedent("""
    import subprocess, sys, time
    from pathlib import Path
    from local_stack.processes import RunRecorder
    data_dir, marker = Path(sys.argv[1]), sys.argv[2]
    # a child in another session that ignores SIGTERM: only SIGKILL stops it
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
        start_new_session=True)
    # a process that is not our descendant but names our private directory (a HAProxy reload)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker],
                                start_new_session=True)
    recorder = RunRecorder(data_dir, "serve")
    recorder.record.haproxy_dir = marker
    recorder.start()
    recorder.record.haproxy_dir = marker
    recorder.record.processes = [p for p in recorder.record.processes if p.pid == child.pid]
    recorder.record.save(recorder.path)
    print(child.pid, stranger.pid, flush=True)
    time.sleep(600)
""")


def _start_owner(data_dir: Path, marker: str) -> tuple[subprocess.Popen[str], int, int]:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(data_dir), marker], stdout=subprocess.PIPE, text=True
    )
    child, stranger = (int(x) for x in owner.stdout.readline().split())
    return owner, child, stranger


def test_a_crashed_runs_leftovers_are_stopped_and_the_record_removed(tmp_path: Path) -> None:
    marker = f"/tmp/aa-hp-test-{os.getpid()}"
    owner, child, stranger = _start_owner(tmp_path, marker)
    child_ref, stranger_ref = process_ref(child), process_ref(stranger)
    assert child_ref and stranger_ref
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    time.sleep(0.2)
    assert is_alive(child_ref) and is_alive(stranger_ref)  # the crash left both running

    stopped = stop_previous_run(tmp_path)

    assert sorted(stopped) == sorted([child, stranger])
    assert not is_alive(child_ref) and not is_alive(stranger_ref)  # SIGTERM ignored: SIGKILL
    assert not (tmp_path / RUN_RECORD_FILE).exists()
    assert stop_previous_run(tmp_path) == []  # nothing left to do


def test_refuses_while_the_recorded_owner_is_alive(tmp_path: Path) -> None:
    marker = f"/tmp/aa-hp-test-{os.getpid()}-live"
    owner, child, stranger = _start_owner(tmp_path, marker)
    try:
        with pytest.raises(RuntimeError, match=f"pid {owner.pid}.*already running"):
            stop_previous_run(tmp_path)
        assert is_alive(process_ref(child))  # type: ignore[arg-type]
    finally:
        owner.kill()
        owner.wait(10)
        stop_previous_run(tmp_path)


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        ref = process_ref(bystander.pid)
        assert ref is not None
        # the record names the same pid with another start time: a process that has gone and
        # whose pid the kernel handed to the bystander
        RunRecord(
            owner=ProcessRef(999_999_999, 1),
            command="serve",
            processes=[ProcessRef(ref.pid, ref.started - 1)],
        ).save(tmp_path / RUN_RECORD_FILE)
        assert stop_previous_run(tmp_path) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait(10)


def test_the_live_run_record_says_where_the_run_answers(tmp_path: Path) -> None:
    owner = subprocess.Popen(["sleep", "600"])
    try:
        ref = process_ref(owner.pid)
        assert ref is not None
        RunRecord(
            owner=ref,
            command="serve",
            api_url="http://127.0.0.1:8123",
            dashboard_url="http://127.0.0.1:9123",
        ).save(tmp_path / RUN_RECORD_FILE)
        live = live_run_record(tmp_path)
        assert live is not None
        assert (live.api_url, live.dashboard_url) == (
            "http://127.0.0.1:8123",
            "http://127.0.0.1:9123",
        )
    finally:
        owner.kill()
        owner.wait(10)
    assert live_run_record(tmp_path) is None  # a record left by a run that has ended

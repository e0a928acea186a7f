"""What a local `ai-agents serve`/`demo` started, recorded in its data directory, so the next
run on that directory can stop whatever a crashed run left behind.

``kill -9`` of the main process takes Ray's head processes with it (Ray starts them with
PR_SET_PDEATHSIG), but not everything: HAProxy is spawned by Serve's HAProxyManager actor in
another process group and keeps the HTTP port, so the next ``ai-agents serve`` would fail in
``HAProxyManager.ready()``; Ray's dashboard and runtime-env agents outlive the raylet for a
minute. We cannot hook how Ray spawns them, so the main process records its whole process tree
(``serve-run.json`` in the data directory, refreshed every few seconds while it runs) and a new
run, finding the record of a dead owner, stops every recorded process still alive plus any
process whose command line names the old run's private HAProxy directory (HAProxy reloads
spawn new processes between two refreshes). Processes are identified by pid *and* start time,
so a pid the kernel has since reused for something else is never signalled. The embedded
PostgreSQL is not in the tree (it daemonises) and is deliberately left alone: the next run
reuses it. Linux only (``/proc``), like the rest of the local set-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUN_RECORD_FILE = "serve-run.json"
REFRESH_S = 3.0
TERM_GRACE_S = 5.0


@dataclass(frozen=True)
class ProcessRef:
    pid: int
    started: int  # clock ticks after boot (/proc/<pid>/stat field 22): tells a reused pid apart


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live, non-zombie process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name in (...) may contain spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def process_ref(pid: int) -> ProcessRef | None:
    stat = _stat(pid)
    return ProcessRef(pid, stat[1]) if stat else None


def is_alive(ref: ProcessRef) -> bool:
    stat = _stat(ref.pid)
    return stat is not None and stat[1] == ref.started


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> list[ProcessRef]:
    """Every live process below ``root`` in the process tree."""
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for pid in _all_pids():
        if stat := _stat(pid):
            children.setdefault(stat[0], []).append(pid)
            started[pid] = stat[1]
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(ProcessRef(pid, started[pid]))
        todo.extend(children.get(pid, []))
    return found


def processes_naming(fragment: str) -> list[ProcessRef]:
    """Live processes whose command line contains ``fragment``."""
    needle = fragment.encode()
    found = []
    for pid in _all_pids():
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes() and (ref := process_ref(pid)):
                found.append(ref)
    return found


@dataclass
class RunRecord:
    owner: ProcessRef
    command: str
    haproxy_dir: str | None = None
    processes: list[ProcessRef] = field(default_factory=list)
    # where this run answers, for `ai-agents health` in another terminal: the API (loopback for
    # a wildcard bind) and the Ray dashboard it started (None when it joined a cluster)
    api_url: str | None = None
    dashboard_url: str | None = None

    @classmethod
    def load(cls, path: Path) -> RunRecord | None:
        try:
            data = json.loads(path.read_text())
            return cls(
                owner=ProcessRef(**data["owner"]),
                command=data["command"],
                haproxy_dir=data.get("haproxy_dir"),
                processes=[ProcessRef(**p) for p in data.get("processes", [])],
                api_url=data.get("api_url"),
                dashboard_url=data.get("dashboard_url"),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, path: Path) -> None:
        """Atomically, so a crash mid-write never leaves half a record."""
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(self)))
        temporary.replace(path)


def _terminate(victims: list[ProcessRef]) -> None:
    for sig, grace in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 2.0)):
        alive = [ref for ref in victims if is_alive(ref)]
        for ref in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(ref.pid, sig)
        deadline = time.monotonic() + grace
        while any(is_alive(ref) for ref in alive) and time.monotonic() < deadline:
            time.sleep(0.1)


def live_run_record(data_dir: Path) -> RunRecord | None:
    """The record of the `ai-agents serve`/`demo` running on this data directory, if any."""
    record = RunRecord.load(data_dir / RUN_RECORD_FILE)
    return record if record is not None and is_alive(record.owner) else None


def stop_previous_run(data_dir: Path) -> list[int]:
    """Stop what a crashed run on ``data_dir`` left; refuse while that run is still alive.

    Returns the pids that were still running and got stopped.
    """
    path = data_dir / RUN_RECORD_FILE
    record = RunRecord.load(path)
    if record is None:
        return []
    if record.owner.pid != os.getpid() and is_alive(record.owner):
        raise RuntimeError(
            f"`ai-agents {record.command}` (pid {record.owner.pid}) is already running on "
            f"data directory {data_dir}; stop it first or use another --data-dir"
        )
    victims = {ref for ref in record.processes if is_alive(ref)}
    if record.haproxy_dir:
        victims.update(processes_naming(record.haproxy_dir))
    victims.discard(ProcessRef(os.getpid(), record.owner.started))
    _terminate(sorted(victims, key=lambda ref: ref.pid))
    if record.haproxy_dir and Path(record.haproxy_dir).name.startswith("aa-hp"):
        shutil.rmtree(record.haproxy_dir, ignore_errors=True)  # ours, made by ingress_mode
    path.unlink(missing_ok=True)
    return [ref.pid for ref in victims]


class RunRecorder:
    """Keeps ``<data dir>/serve-run.json`` up to date while this process runs; removes it on a
    clean stop (a record left behind means the run did not end cleanly)."""

    def __init__(self, data_dir: Path, command: str) -> None:
        owner = process_ref(os.getpid())
        assert owner is not None
        self.path = data_dir / RUN_RECORD_FILE
        self.record = RunRecord(owner=owner, command=command)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="run-recorder", daemon=True)

    def refresh(self) -> None:
        # read each time: the ingress mode may export HAProxy's directory after we started
        self.record.haproxy_dir = os.environ.get("RAY_SERVE_HAPROXY_SERVER_STATE_BASE")
        self.record.processes = descendants(os.getpid())
        self.record.save(self.path)

    def _run(self) -> None:
        while not self._stop.wait(REFRESH_S):
            with contextlib.suppress(OSError):
                self.refresh()

    def start(self) -> RunRecorder:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.refresh()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(REFRESH_S + 1)
        self.path.unlink(missing_ok=True)


def clean_up_after_crash(data_dir: Path) -> None:
    """Stop what a previous run on this data directory left behind, and say so on stderr."""
    stopped = stop_previous_run(data_dir)
    if stopped:
        print(
            f"Stopped {len(stopped)} process(es) left by a previous run that did not "
            f"end cleanly (pids {', '.join(map(str, sorted(stopped)))})",
            file=sys.stderr,
        )

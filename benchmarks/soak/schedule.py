"""The soak's fault schedule, scaled with the run's duration, and the actions that inject each
fault into the running system.

The one-hour schedule (times in minutes):

    10, 20, 30, 40, 50   one replica SIGKILLed, a different deployment each time
    17, 37               an LLM 429 burst (the next ``burst`` completions answer 429)
    21.6 - 31.6          the LLM answers 402 (out of credits) to everything, ten minutes
    42 - 43              every tenant's SDP answers 503 to everything, one minute
    47                   PostgreSQL restarted (``pg_ctl restart -m fast``)

A run of another length scales every time and duration by ``duration / 3600`` (a window is
never shorter than ``MIN_WINDOW_S``), so a 3-minute smoke run meets every fault once.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HOUR_S = 3600.0
KILL_ORDER = ("Enhancer", "Ingress", "Synthesizer", "ContextGatherer", "Dispatcher")
MIN_WINDOW_S = 10.0


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` starts at ``start_s`` (seconds into the run) and lasts until
    ``end_s`` (equal for an instant fault); ``target`` names the deployment killed."""

    kind: str  # kill, llm_429, llm_402, sdp_5xx, pg_restart
    start_s: float
    end_s: float
    target: str | None = None
    count: int = 0  # llm_429: how many answers are 429

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        if self.kind == "kill":
            return f"SIGKILL one {self.target} replica"
        if self.kind == "llm_429":
            return f"LLM 429 burst ({self.count} answers)"
        if self.kind == "llm_402":
            return f"LLM 402 (no credits) for {self.end_s - self.start_s:.0f} s"
        if self.kind == "sdp_5xx":
            return f"SDP 503 on every call for {self.end_s - self.start_s:.0f} s"
        return "PostgreSQL restart"


def fault_schedule(duration_s: float, *, burst: int = 30) -> list[Fault]:
    """The schedule above for a run of ``duration_s`` seconds, ordered by start."""
    scale = duration_s / HOUR_S

    def at(minutes: float) -> float:
        return round(minutes * 60 * scale, 1)

    def window(start_min: float, minutes: float) -> tuple[float, float]:
        start = at(start_min)
        return start, start + max(MIN_WINDOW_S, round(minutes * 60 * scale, 1))

    faults = [
        Fault("kill", at(m), at(m), target=KILL_ORDER[i % len(KILL_ORDER)])
        for i, m in enumerate((10, 20, 30, 40, 50))
    ]
    faults += [Fault("llm_429", at(m), at(m), count=burst) for m in (17, 37)]
    faults.append(Fault("llm_402", *window(21.6, 10)))
    faults.append(Fault("sdp_5xx", *window(42, 1)))
    faults.append(Fault("pg_restart", at(47), at(47)))
    return sorted(faults, key=lambda f: f.start_s)


def kill_replica(deployment: str) -> dict[str, Any]:
    """SIGKILL one running replica of ``deployment`` (its PID from the Serve controller)."""
    from local_stack.ray_serve import replica_pids

    pids = replica_pids(deployment).get(deployment, [])
    if not pids:
        return {"killed": None, "replicas": 0}
    with contextlib.suppress(ProcessLookupError):  # a stale PID: the replica just died
        os.kill(pids[0], signal.SIGKILL)
    return {"killed": pids[0], "replicas": len(pids)}


def restart_postgres(pgdata: Path) -> dict[str, Any]:
    """``pg_ctl restart -m fast``: every connection is cut, the server comes back on the same
    socket with the same options (``postmaster.opts``)."""
    import pwd
    import subprocess
    import time

    from pgserver._commands import POSTGRES_BIN_PATH

    owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name  # pgserver runs it as its own user
    user = None if owner == pwd.getpwuid(os.geteuid()).pw_name else owner
    started = time.monotonic()
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast"]
        + ["-l", str(pgdata / "log"), "restart"],
        check=True,
        user=user,
        timeout=120,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return {"restart_s": round(time.monotonic() - started, 1)}

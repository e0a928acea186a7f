"""CPU seconds and resident memory of every process of a run: this process and its
descendants (Ray, replicas, HAProxy, simulators) plus the PostgreSQL postmaster and its
backends, each classified by what it is (replica of which deployment, Ray core, ...)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil


def classify(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
        name = proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "gone"
    head = cmd[0] if cmd else name
    if "postgres" in name or "postgres" in head:
        return "postgres"
    if name == "haproxy" or head.endswith("/haproxy"):
        return "haproxy"
    if head.startswith("ray::ServeReplica"):
        return "replica:" + head.split(":")[-1].split(".")[0].strip()
    if head.startswith("ray::ProxyActor"):
        return "serve proxy"
    if head.startswith("ray::ServeController"):
        return "serve controller"
    if head.startswith("ray::RateLimiterActor"):
        return "rate limiter actors"
    if head.startswith("ray::IDLE"):
        return "ray idle workers"
    if head.startswith(("ray::HAProxy", "ray::JobSupervisor")):
        return head[5:].split(".")[0].split(" ")[0]
    if head.startswith("ray::DashboardAgent"):
        return "ray dashboard"
    if head.startswith("ray::RuntimeEnvAgent"):
        return "ray runtime-env agent"
    if head.startswith("ray::"):
        return "ray actor/worker"
    joined = " ".join(cmd)
    if "benchmarks.intake.bare_server" in joined:
        return "bare uvicorn"
    if "benchmarks.pipeline.floor" in joined:
        return "floor process"
    if "benchmarks.rig.intake_floor" in joined:
        return "intake floor"
    if "benchmarks.rig.loadgen" in joined:
        return "load generator"
    if "dashboard" in joined:
        return "ray dashboard"
    if any(
        part in joined
        for part in (
            "gcs_server",
            "raylet",
            "ray/_private",
            "ray/autoscaler",
            "runtime_env",
            "log_monitor",
            "resource_tracker",
        )
    ):
        return "ray core"
    if proc.pid == os.getpid():
        return "driver+simulators"
    return "other:" + (Path(head).name or name)


class ProcessSampler:
    """Samples CPU time and RSS of this process tree plus PostgreSQL every ``interval_s``.

    CPU of a process is counted from the first time it is seen in a window (or from its start
    when it appears mid-window); a process that dies between samples loses at most one interval.
    """

    def __init__(
        self,
        postmaster_pid: int | None = None,
        *,
        interval_s: float = 0.5,
        exclude: Iterable[int] = (),
    ) -> None:
        self.postmaster_pid = postmaster_pid
        self.interval_s = interval_s
        self.exclude = set(exclude)
        self._procs: dict[int, psutil.Process] = {}
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._kind: dict[int, str] = {}
        self._peak_rss = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._window_open = False

    def processes(self) -> list[psutil.Process]:
        roots = [psutil.Process()]
        if self.postmaster_pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                roots.append(psutil.Process(self.postmaster_pid))
        found: dict[int, psutil.Process] = {}
        for root in roots:
            found[root.pid] = root
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in root.children(recursive=True):
                    found[child.pid] = child
        for pid in self.exclude:
            found.pop(pid, None)
        for pid, proc in list(found.items()):  # the profiler is not part of the system
            with contextlib.suppress(psutil.Error):
                if proc.name() == "py-spy":
                    del found[pid]
        # Keep the cached Process objects (cpu_times needs the same object across samples).
        out = []
        for pid, proc in found.items():
            cached = self._procs.get(pid)
            if cached is None or not cached.is_running():
                self._procs[pid] = cached = proc
            out.append(cached)
        return out

    def _sample(self, first: bool = False) -> None:
        rss = 0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                cpu = times.user + times.system
                rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            with self._lock:
                if proc.pid not in self._base:
                    self._base[proc.pid] = cpu if first else 0.0
                    self._kind[proc.pid] = classify(proc)
                self._last[proc.pid] = cpu
        with self._lock:
            self._peak_rss = max(self._peak_rss, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start_window(self) -> None:
        """Begin counting CPU from now (processes alive now count from their current time)."""
        with self._lock:
            self._base.clear()
            self._last.clear()
            self._peak_rss = 0
        self._sample(first=True)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")
            self._thread.start()

    def end_window(self) -> dict[str, Any]:
        self._sample()
        with self._lock:
            per_kind: dict[str, float] = {}
            for pid, last in self._last.items():
                kind = self._kind.get(pid, "?")
                per_kind[kind] = per_kind.get(kind, 0.0) + max(0.0, last - self._base[pid])
            return {
                "cpu_s": sum(per_kind.values()),
                "cpu_by_kind": per_kind,
                "peak_rss_bytes": self._peak_rss,
            }

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    def memory(self, *, pss: bool = True) -> dict[str, Any]:
        """RSS (and PSS, which splits shared pages fairly) per kind of process, now."""
        by_kind: dict[str, dict[str, int]] = {}
        for proc in self.processes():
            try:
                kind = classify(proc)
                info = proc.memory_full_info() if pss else proc.memory_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            entry = by_kind.setdefault(kind, {"rss": 0, "pss": 0, "count": 0})
            entry["rss"] += info.rss
            entry["pss"] += getattr(info, "pss", 0)
            entry["count"] += 1
        return {
            "rss_bytes": sum(e["rss"] for e in by_kind.values()),
            "pss_bytes": sum(e["pss"] for e in by_kind.values()),
            "by_kind": by_kind,
        }

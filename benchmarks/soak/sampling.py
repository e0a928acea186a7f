"""One sample of the running system, taken every ``--sample-every`` seconds of the soak.

Per kind of process (the rig's ``classify``, with Ray's core split into raylet, GCS, the
dashboard and its agents): how many, their resident and proportional memory, open file
descriptors and threads. Per database: connections by state, and every table's rows, heap and
index bytes, and what retention purged and how old each retained table's oldest row is. The
logs: bytes in Ray's session log directory and in PostgreSQL's log file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from benchmarks.rig.process_sampler import ProcessSampler, classify

MB = 1e6  # the goals are in MB (10^6 bytes)
_RAY_CORE = (
    ("gcs_server", "ray gcs"),
    ("/raylet", "raylet"),
    ("autoscaler/_private/monitor.py", "ray autoscaler monitor"),
    ("log_monitor.py", "ray log monitor"),
)


def kind_of(proc: psutil.Process) -> str:
    """What the process is, finer than ``classify`` where Ray's own processes are concerned."""
    try:
        cmd = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "gone"
    head = cmd[0] if cmd else ""
    joined = " ".join(cmd)
    for marker, kind in _RAY_CORE:
        if marker in head or marker in joined.split(" --")[0]:
            return kind
    if head.startswith("ray-dashboard-") or "multiprocessing.forkserver" in joined:
        return "dashboard modules"
    if head.startswith("ray::DashboardAgent"):
        return "dashboard agent"
    if "dashboard/dashboard.py" in joined:
        return "dashboard"
    if head.startswith("ray::HAProxyManager"):
        return "haproxy manager"
    kind = classify(proc)
    return kind.split(":", 1)[1] if kind.startswith("replica:") else kind


def process_sample(sampler: ProcessSampler) -> dict[str, dict[str, Any]]:
    """Per kind: count, RSS and PSS in MB, fds, threads, and each process's RSS (by pid)."""
    kinds: dict[str, dict[str, Any]] = {}
    for proc in sampler.processes():
        try:
            kind = kind_of(proc)
            with proc.oneshot():
                memory = proc.memory_full_info()
                fds = proc.num_fds()
                threads = proc.num_threads()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if kind == "gone":
            continue
        entry = kinds.setdefault(
            kind, {"n": 0, "rss_mb": 0.0, "pss_mb": 0.0, "fds": 0, "threads": 0, "pids": {}}
        )
        entry["n"] += 1
        entry["rss_mb"] += memory.rss / MB
        entry["pss_mb"] += getattr(memory, "pss", 0) / MB
        entry["fds"] += fds
        entry["threads"] += threads
        entry["pids"][str(proc.pid)] = round(memory.rss / MB, 2)
    for entry in kinds.values():
        entry["rss_mb"] = round(entry["rss_mb"], 2)
        entry["pss_mb"] = round(entry["pss_mb"], 2)
    return kinds


async def database_sample(owner_url: str) -> dict[str, Any]:
    """Connections and table sizes, read as the owner (RLS would hide other tenants' rows)."""
    conn = await asyncpg.connect(owner_url, timeout=10)
    try:
        connections = await conn.fetch(
            """SELECT coalesce(application_name, '') AS app, coalesce(state, '') AS state,
                      count(*) AS n
               FROM pg_stat_activity WHERE backend_type = 'client backend'
               GROUP BY 1, 2"""
        )
        tables = await conn.fetch(
            """SELECT c.relname AS table, s.n_live_tup AS rows, s.n_dead_tup AS dead,
                      pg_table_size(c.oid) AS heap, pg_indexes_size(c.oid) AS indexes
               FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
               ORDER BY c.relname"""
        )
        database_bytes = await conn.fetchval("SELECT pg_database_size(current_database())")
        retention = await conn.fetch(
            """SELECT table_name, purged, extract(epoch FROM now() - oldest_at) AS oldest_s
               FROM app_retention_stats()"""
        )
    finally:
        await conn.close()
    return {
        "connections": sum(r["n"] for r in connections),
        "service_connections": sum(r["n"] for r in connections if r["app"] == "ai-agents"),
        "by_state": {f"{r['app'] or '?'}/{r['state'] or '?'}": r["n"] for r in connections},
        "tables": {
            r["table"]: {
                "rows": r["rows"],
                "dead": r["dead"],
                "heap_mb": round(r["heap"] / MB, 3),
                "index_mb": round(r["indexes"] / MB, 3),
            }
            for r in tables
        },
        "database_mb": round(database_bytes / MB, 2),
        "retention": {
            r["table_name"]: {
                "purged": int(r["purged"]),
                "oldest_s": float(r["oldest_s"]) if r["oldest_s"] is not None else None,
            }
            for r in retention
        },
    }


def log_bytes(path: Path | None) -> int:
    """Bytes in the log file ``path`` or the files under it, rotated ones included."""
    if path is None:
        return 0
    total = 0
    files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
    for file in files:
        with contextlib.suppress(OSError):
            if file.is_file():
                total += file.stat().st_size
    return total


def ray_logs_dir() -> Path | None:
    """This driver's Ray session log directory (None before Ray starts)."""
    with contextlib.suppress(Exception):
        import ray

        node = ray._private.worker._global_node
        if node is not None:
            return Path(node.get_logs_dir_path())
    return None

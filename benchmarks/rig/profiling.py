"""py-spy helpers: record a process for a few seconds and summarise where its CPU went."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy_available() -> bool:
    return shutil.which("py-spy") is not None


def start_record(pid: int, seconds: float, out: Path, rate: int = 97) -> subprocess.Popen[bytes]:
    """``py-spy record --gil --format raw``: collapsed stacks of the thread holding the GIL,
    i.e. where the process spends Python CPU. (Without ``--gil`` py-spy also counts threads
    parked in lock waits as active, which inflates ``Condition.wait`` in thread pools.) Native
    work done without the GIL (Ray's C++ core worker threads) is not in these samples; the
    per-process CPU totals of ``process_sampler.ProcessSampler`` cover it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--gil",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    tail = "/".join(parts[-2:]) if len(parts) >= 2 else file
    return f"{name} ({tail})"


NATIVE_LEAVES = [
    ("main_loop (", "Ray core worker, native (C++ RPC, object store)"),
    ("Worker.main_loop (", "Ray core worker, native (C++ RPC, object store)"),
    ("Runner.run (", "event loop, native (uvloop I/O, C callbacks)"),
    ("run_forever (", "event loop, native (uvloop I/O, C callbacks)"),
    ("run_until_complete (", "event loop, native (uvloop I/O, C callbacks)"),
    ("Thread.run (", "event loop, native (uvloop I/O, C callbacks)"),
    (
        "UserCallableWrapper.__init__.<locals>._run_user_code_event_loop (",
        "event loop, native (uvloop I/O, C callbacks)",
    ),
    (
        "SingletonThreadRouter._get_singleton_asyncio_loop.<locals>._run_router_event_loop (",
        "event loop, native (uvloop I/O, C callbacks)",
    ),
    ("Condition.wait (", "cross-thread hand-off (threading waits)"),
    ("Condition.notify (", "cross-thread hand-off (threading waits)"),
    ("_worker (", "cross-thread hand-off (threading waits)"),
    ("_WorkItem.run (", "cross-thread hand-off (threading waits)"),
]


def _bucket(stack: list[str]) -> str:
    """Attribute a sample to the most specific layer it is in."""
    joined = ";".join(stack)
    rules = [
        ("asyncpg", "asyncpg (database driver)"),
        ("/hmac.py", "HMAC signature"),
        ("opentelemetry", "OpenTelemetry spans"),
        ("pipeline/tracing", "OpenTelemetry spans"),
        ("logging_setup", "logging (JSON log lines)"),
        ("pipeline/redaction", "logging (JSON log lines)"),
        ("logging/", "logging (JSON log lines)"),
        ("ray_metrics", "metrics (ray.util.metrics)"),
        ("ray/util/metrics", "metrics (ray.util.metrics)"),
        ("pydantic", "pydantic (validation/serialisation)"),
        ("serve_app/", "application code (routes, payload, auth)"),
        ("pipeline/", "application code (pipeline)"),
        ("db/", "application code (db helpers)"),
        ("actors/", "application code (actors)"),
        ("httpx", "httpx/httpcore (HTTP client)"),
        ("httpcore", "httpx/httpcore (HTTP client)"),
        ("openai", "openai client"),
        ("fastapi", "FastAPI routing/dependencies"),
        ("starlette", "Starlette"),
        ("uvicorn", "uvicorn HTTP server"),
        ("httptools", "uvicorn HTTP server"),
        ("ray/serve/_private/logging_utils", "logging (Serve StreamToLogger)"),
        ("ray/serve/_private/proxy", "Serve proxy"),
        ("ray/serve/_private/router", "Serve router"),
        ("ray/serve/_private/replica", "Serve replica wrapper"),
        ("ray/serve", "Serve (other)"),
        ("ray/_private", "Ray core (RPC, serialization)"),
        ("ray/", "Ray core (RPC, serialization)"),
        ("asyncio", "asyncio/uvloop scheduling"),
    ]
    # A leaf that is a thread's or loop's top frame means the thread was on CPU in native code
    # called from there (py-spy does not sample idle threads).
    leaf = stack[-1] if stack else ""
    for needle, label in NATIVE_LEAVES:
        if leaf.startswith(needle):
            return label
    # Otherwise the innermost match wins: walk the stack from the leaf outwards.
    for frame in reversed(stack):
        for needle, label in rules:
            if needle in frame:
                return label
    return "other" if joined else "?"


def summarise(path: Path, top: int = 12) -> dict[str, Any]:
    """Self-time leaves and a per-layer split from a collapsed-stack file."""
    leaves: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return {"samples": 0, "leaves": [], "layers": []}
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            f for f in stack_text.split(";") if f and not f.startswith(("process ", "thread "))
        ]
        total += count
        if frames:
            leaves[_short(frames[-1])] += count
        layers[_bucket(frames)] += count
    pct = lambda n: round(100.0 * n / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "leaves": [(name, pct(n)) for name, n in leaves.most_common(top)],
        "layers": [(name, pct(n)) for name, n in layers.most_common()],
    }

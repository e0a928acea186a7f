"""Reading what the running system wrote: span lines, replica log files, Prometheus scrapes.

Everything here looks at *this* test session's Ray (its own session directory and metrics
port), never at ``/tmp/ray/session_latest``, which another Ray on the machine may own.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


def spans_file() -> Path:
    return Path(os.environ["AI_AGENTS_TRACE_FILE"])


def read_spans() -> list[dict[str, Any]]:
    path = spans_file()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def wait_for_spans(
    predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """Spans are written when they end, a moment after the API already reports the result."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans = read_spans()
        if predicate(spans) or time.monotonic() > deadline:
            return spans
        await asyncio.sleep(0.2)


def session_logs_dir() -> Path:
    import ray

    return Path(ray._private.worker.global_worker.node.get_logs_dir_path())


def log_files() -> Iterator[Path]:
    """Worker stdout/stderr (where our JSON lines go) and Serve's per-replica files."""
    for path in session_logs_dir().rglob("*"):
        if path.is_file() and path.suffix in (".log", ".err", ".out", ".txt", ".json"):
            yield path


def all_log_text() -> str:
    return "\n".join(p.read_text(errors="replace") for p in log_files())


def json_log_lines() -> list[dict[str, Any]]:
    lines = []
    for path in log_files():
        for raw in path.read_text(errors="replace").splitlines():
            start = raw.find('{"timestamp"')
            if start < 0:
                continue
            try:
                entry = json.loads(raw[start:])
            except ValueError:
                continue
            entry["_file"] = path.name
            lines.append(entry)
    return lines


def metrics_port() -> int:
    import ray

    return int(ray._private.worker.global_worker.node.metrics_export_port)


def series_names(text: str) -> dict[str, str]:
    """Every sample name in a Prometheus text page, with its family's type."""
    names: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names[sample.name] = family.type
    return names


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


async def scrape(url: str, headers: dict[str, str] | None = None) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url, headers=headers)
        response.raise_for_status()
        return response.text

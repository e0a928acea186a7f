"""Re-embedding a tenant as a batch job: the log lines it speaks and the run itself.

``ai-agents reindex --tenant T --ray`` submits ``python -m scripts.reindex`` as a Ray Job on the
cluster that runs the service; the job calls :func:`run_reindex` with the cluster's own
database URL. Everything the operator sees comes back through the job's log — the lines the
Ray dashboard's Jobs view shows, which the CLI parses again for its progress bar:

    reindex: reindexing acme with wordllama/l2_supercat_256 (256 dimensions)
    reindex: progress kind=tickets done=640 total=10000
    reindex: result {"tenant_id": "acme", "tickets_embedded": 10000, ...}
    reindex: error: unknown tenant 'acme'

Resumable by construction (:func:`pipeline.retrieval.vector_index.reindex_tenant`): each
batch commits, and a re-run skips every vector that is already fresh, so a job stopped half-way
loses at
most one batch and the next run carries on. Ray-free: the same code runs in-process.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from db.pool import create_pool
from pipeline.batch.importers.storage import require_tenant
from pipeline.retrieval.embeddings import Embedder
from pipeline.retrieval.vector_index import ReindexResult, reindex_tenant

LOG_PREFIX = "reindex:"
ERROR_PREFIX = f"{LOG_PREFIX} error: "
RESULT_PREFIX = f"{LOG_PREFIX} result "
PROGRESS_EVERY_S = 1.0  # a 10,000-ticket tenant writes ~160 batches: one line a second is plenty
_PROGRESS = re.compile(rf"^{LOG_PREFIX} progress kind=(\w+) done=(\d+) total=(\d+)\s*$")

Emit = Callable[[str], None]


def progress_line(kind: str, done: int, total: int) -> str:
    return f"{LOG_PREFIX} progress kind={kind} done={done} total={total}"


def parse_progress_line(line: str) -> tuple[str, int, int] | None:
    """(kind, done, total) from a progress line; None for any other line."""
    found = _PROGRESS.match(line.strip())
    return (found.group(1), int(found.group(2)), int(found.group(3))) if found else None


def result_line(result: ReindexResult) -> str:
    return RESULT_PREFIX + json.dumps(result.as_dict(), sort_keys=True)


def parse_result_line(line: str) -> dict[str, Any] | None:
    if not line.startswith(RESULT_PREFIX):
        return None
    try:
        parsed = json.loads(line[len(RESULT_PREFIX) :])
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def job_arguments(tenant_id: str) -> list[str]:
    """The argv after ``python -m scripts.reindex``."""
    return ["--tenant", tenant_id]


class _ThrottledProgress:
    """One progress line per second at most, plus the last one of each kind (so the final
    count always reaches the log)."""

    def __init__(self, emit: Emit, every_s: float) -> None:
        self._emit = emit
        self._every_s = every_s
        self._last = 0.0

    def __call__(self, kind: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self._last >= self._every_s:
            self._last = now
            self._emit(progress_line(kind, done, total))


async def run_reindex(
    database_url: str,
    tenant_id: str,
    embedder: Embedder,
    *,
    emit: Emit,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> ReindexResult:
    """Embed the tenant's missing or stale vectors, reporting through ``emit`` (one log line
    per call). Raises :class:`db.repositories.tenants.UnknownTenant` before touching anything."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await require_tenant(pool, tenant_id)
        emit(
            f"{LOG_PREFIX} reindexing {tenant_id} with {embedder.model} "
            f"({embedder.dimensions} dimensions); fresh vectors are skipped"
        )
        result = await reindex_tenant(
            pool, tenant_id, embedder, progress=_ThrottledProgress(emit, progress_every_s)
        )
    finally:
        await pool.close()
    emit(
        f"{LOG_PREFIX} done: {result.tickets_embedded} of {result.tickets_total} ticket(s) and "
        f"{result.docs_embedded} of {result.docs_total} KB article(s) embedded "
        f"({result.chunks_embedded} chunk(s)); the rest were fresh"
    )
    emit(result_line(result))
    return result

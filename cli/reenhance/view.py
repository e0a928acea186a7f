"""What `ai-agents reenhance` shows a person: a progress bar on stderr while a batch runs and
a per-outcome table at the end (stdout stays free for `--json`)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.table import Table

from cli.support import progress_bar
from pipeline.batch.reenhance_plan import BatchProgress


def progress_summary(progress: BatchProgress | None) -> str:
    if progress is None:
        return "not started yet"
    return (
        f"{progress.done}/{progress.total} done (completed {progress.completed}, "
        f"context-only {progress.context_only}, skipped {progress.skipped}, failed "
        f"{progress.failed}; running {progress.running}, queued {progress.queued}, "
        f"not released {progress.pending})"
    )


def outcome_table(progress: BatchProgress) -> Table:
    table = Table(show_header=True, header_style="bold")
    table.add_column("outcome")
    table.add_column("items", justify="right")
    rows = [
        ("completed (LLM note)", progress.completed),
        ("context-only note", progress.context_only),
        ("skipped (ticket too thin)", progress.skipped),
        ("failed", progress.failed),
    ]
    unfinished = progress.active + progress.pending
    if unfinished:
        rows.append(("not finished", unfinished))
    for label, count in rows:
        table.add_row(label, str(count))
    table.add_row("total", str(progress.total), style="bold")
    return table


class ProgressBar:
    """Finished items of the batch against its total; nothing at all when disabled."""

    def __init__(self, job_id: str, *, enabled: bool) -> None:
        self._progress = progress_bar(spinner=True) if enabled else None
        self._job_id = job_id
        self._task: Any = None

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(f"{self._job_id}: starting", total=None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, progress: BatchProgress | None) -> None:
        if self._progress is None or progress is None:
            return
        label = (
            f"{self._job_id}: completed {progress.completed + progress.context_only}"
            f" · failed {progress.failed} · running {progress.running}"
        )
        self._progress.update(
            self._task, description=label, completed=progress.done, total=progress.total or None
        )

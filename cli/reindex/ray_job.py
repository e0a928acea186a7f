"""`ai-agents reindex --tenant T --ray`: the re-embedding of a large tenant as a Ray Job.

The CLI only submits and watches, like `ai-agents reenhance`: the job (`scripts/reindex.py`)
runs on the cluster that runs the service, which already holds the database URL and the
embedding settings, so the operator's machine needs only the Jobs API address and no secret
travels in the job's runtime_env. Progress and the result come back from the job's own log
lines (`pipeline.batch.reindex_run`), the same lines the dashboard's Jobs view shows.

Each run is its own Ray job, `reindex-<tenant>-<UTC time>`, tagged `metadata.kind=reindex`;
a second run for a tenant is refused while one is still going (two runs would embed the same
rows twice). A re-run after a stop or a failure resumes: fresh vectors are skipped.
"""

from __future__ import annotations

import shlex
import time
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

from cli.ray_jobs import job_failure, jobs_address, jobs_client, submit_with_retry
from cli.support import CommandError, emit_json, progress_bar
from pipeline.batch.reindex_run import (
    ERROR_PREFIX,
    job_arguments,
    parse_progress_line,
    parse_result_line,
)
from pipeline.retrieval.vector_index import ReindexResult

ENTRYPOINT = ["python", "-m", "scripts.reindex"]
JOB_KIND = "reindex"
POLL_S = 1.0
LABELS = {"tickets": "tickets", "kb": "KB articles"}


def job_id_for(tenant_id: str) -> str:
    return f"reindex-{tenant_id}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def running_reindex(client: Any, tenant_id: str) -> str | None:
    """The submission id of this tenant's reindex job that has not finished, if any."""
    for job in client.list_jobs():
        meta = job.metadata or {}
        mine = meta.get("kind") == JOB_KIND and meta.get("tenant") == tenant_id
        if mine and not job.status.is_terminal():
            return str(job.submission_id)
    return None


def submit(client: Any, tenant_id: str) -> str:
    busy = running_reindex(client, tenant_id)
    if busy is not None:
        raise CommandError(
            f"a reindex of {tenant_id} is still running as {busy}: watch it with "
            f"`ray job logs {busy} --follow` or stop it with `ray job stop {busy}`"
        )
    job_id = job_id_for(tenant_id)
    submit_with_retry(
        client,
        entrypoint=shlex.join([*ENTRYPOINT, *job_arguments(tenant_id)]),
        submission_id=job_id,
        runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}},
        metadata={"kind": JOB_KIND, "tenant": tenant_id},
    )
    return job_id


class LogView:
    """What the job's log says so far: the latest progress per kind, the result, an error."""

    def __init__(self) -> None:
        self.progress: dict[str, tuple[int, int]] = {}
        self.result: dict[str, Any] | None = None
        self.error: str | None = None

    def scan(self, logs: str) -> LogView:
        for line in logs.splitlines():
            parsed = parse_progress_line(line)
            if parsed is not None:
                self.progress[parsed[0]] = (parsed[1], parsed[2])
            self.result = parse_result_line(line) or self.result
            if line.startswith(ERROR_PREFIX):
                self.error = line[len(ERROR_PREFIX) :].strip()
        return self


def watch(client: Any, job_id: str, *, show_progress: bool) -> tuple[str, LogView]:
    """Poll until the job ends; a progress bar per kind on stderr when ``show_progress``."""
    bar = progress_bar() if show_progress else None
    tasks: dict[str, Any] = {}
    if bar is not None:
        bar.start()
    try:
        while True:
            status = client.get_job_status(job_id)
            view = LogView().scan(client.get_job_logs(job_id))
            if bar is not None:
                for kind, (done, total) in view.progress.items():
                    if kind not in tasks:
                        tasks[kind] = bar.add_task(LABELS.get(kind, kind), total=total)
                    bar.update(tasks[kind], completed=done, total=total)
            if status.is_terminal():
                return str(status.value), view
            time.sleep(POLL_S)
    finally:
        if bar is not None:
            bar.stop()


def run_as_ray_job(
    tenant_id: str, address: str | None, *, wait: bool, show_progress: bool
) -> dict[str, Any]:
    """Submit (and unless ``wait`` is False, follow) one reindex job → the job's result
    (``job_id`` and ``job_status`` added). Raises CommandError with the job's own error line
    when it fails."""
    client = jobs_client(address)
    job_id = submit(client, tenant_id)
    if show_progress:
        Console(stderr=True).print(
            f"Submitted {job_id} to {jobs_address(address)}; logs: ray job logs {job_id} --follow",
            highlight=False,
        )
    if not wait:
        return {"job_id": job_id, "job_status": "PENDING", "tenant_id": tenant_id}
    status, view = watch(client, job_id, show_progress=show_progress)
    if status != "SUCCEEDED" or view.result is None:
        raise CommandError(
            view.error or job_failure(client, job_id, status, f"reindex job {job_id}")
        )
    return {**view.result, "job_id": job_id, "job_status": status}


def reindex_as_ray_job(
    tenant_id: str, address: str | None, *, no_wait: bool, as_json: bool
) -> ReindexResult | None:
    """The `--ray` branch of `ai-agents reindex`: the finished job's result for the caller to
    print like a local run, or None when it already printed (``--json``, ``--no-wait``)."""
    outcome = run_as_ray_job(tenant_id, address, wait=not no_wait, show_progress=not as_json)
    if as_json:
        emit_json(outcome)
        return None
    if no_wait:
        typer.echo(outcome["job_id"])
        return None
    typer.echo(f"Ray job {outcome['job_id']} succeeded")
    fields = ReindexResult.__dataclass_fields__
    return ReindexResult(**{k: v for k, v in outcome.items() if k in fields})

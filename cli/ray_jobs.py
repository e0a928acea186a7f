"""The Ray Jobs side of a re-enhancement batch: where the Jobs API is, which Ray job runs a
batch, and what its logs say.

One batch (the operator's submission id, also the `batch_id` on every job row) can take
several Ray jobs: the first is submitted under the batch id itself, a re-run after a stop or a
failure as `<batch id>-run2`, `-run3`, ... Ray never reuses a submission id, and deleting the
old job to reuse it races with Ray's clean-up of that job's supervisor actor (which is found by
name and can take the new job down with it). Separate ids also keep each attempt's logs in the
dashboard. Every attempt carries `metadata.batch_id`, so `status`/`stop`/`logs <batch id>`
follow the latest one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import typer

from cli.support import CommandError
from pipeline.batch.reenhance_plan import (
    LOG_PREFIX,
    BatchProgress,
    parse_progress_line,
    parse_result_line,
)

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# `python` is the cluster's: a local `ai-agents serve`/`demo` puts its own interpreter first on
# the PATH its Ray processes (and so every job's shell) inherit; a KubeRay pod's is the image's.
ENTRYPOINT = ["python", "-m", "scripts.reenhance"]
JOB_KIND = "reenhance"
ERROR_PREFIX = f"{LOG_PREFIX} error: "
LOG_TAIL_LINES = 12


def jobs_address(address: str | None) -> str:
    return (
        address
        or os.environ.get("RAY_API_SERVER_ADDRESS")
        or os.environ.get("RAY_ADDRESS")
        or DEFAULT_ADDRESS
    )


def jobs_client(address: str | None) -> Any:
    from ray.job_submission import JobSubmissionClient

    target = jobs_address(address)
    try:
        return JobSubmissionClient(target)
    except Exception as exc:  # noqa: BLE001 - unreachable, wrong scheme, not a dashboard
        raise CommandError(
            f"cannot reach the Ray Jobs API at {target} ({type(exc).__name__}); pass --address"
        ) from None


def batch_attempts(client: Any, batch_id: str) -> list[Any]:
    """The Ray jobs that ran this batch, oldest first."""
    runs = [
        job
        for job in client.list_jobs()
        if job.submission_id == batch_id
        or (
            (job.metadata or {}).get("batch_id") == batch_id
            and (job.metadata or {}).get("kind") == JOB_KIND
        )
    ]
    return sorted(runs, key=lambda job: job.start_time or 0)


def next_job_id(client: Any, batch_id: str) -> tuple[str, int]:
    """The submission id for the batch's next run and its attempt number; refuses while an
    earlier run is still going (two runners would release twice the wave)."""
    runs = batch_attempts(client, batch_id)
    active = [job for job in runs if not job.status.is_terminal()]
    if active:
        raise CommandError(
            f"batch {batch_id} is still {active[-1].status.value} as "
            f"{active[-1].submission_id}: watch it with `ai-agents reenhance "
            f"status {batch_id}` or stop it first"
        )
    if not runs:
        return batch_id, 1
    taken = {job.submission_id for job in runs}
    attempt = len(runs) + 1
    while f"{batch_id}-run{attempt}" in taken:
        attempt += 1
    return f"{batch_id}-run{attempt}", attempt


def latest_job_id(client: Any, batch_or_job_id: str) -> str:
    """A batch id resolves to its latest run; anything else is taken as a Ray job id."""
    runs = batch_attempts(client, batch_or_job_id)
    return runs[-1].submission_id if runs else batch_or_job_id


def submit_with_retry(client: Any, *, wait_s: float = 90.0, **job: Any) -> str:
    """Submit, riding out the moments after a cluster start when the head has no job agent
    yet (Ray answers 500 "No available agent ... try again later")."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return client.submit_job(**job)
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(1.0)


def job_info(client: Any, job_id: str) -> Any:
    try:
        return client.get_job_info(job_id)
    except RuntimeError as exc:
        if "404" in str(exc) or "does not exist" in str(exc):
            raise CommandError(f"no re-enhancement job {job_id!r} on this cluster") from None
        raise


@dataclass
class JobLogView:
    """What the job has said so far: its last progress line, its result, its error."""

    progress: BatchProgress | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    @classmethod
    def scan(cls, logs: str) -> JobLogView:
        view = cls()
        for line in logs.splitlines():
            view.progress = parse_progress_line(line) or view.progress
            view.result = parse_result_line(line) or view.result
            if line.startswith(ERROR_PREFIX):
                view.error = line[len(ERROR_PREFIX) :].strip()
        return view


def log_tail(logs: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last non-empty lines of a job's log: where a crash (an import error, a traceback)
    says what went wrong."""
    return [line for line in logs.splitlines() if line.strip()][-lines:]


def job_failure(client: Any, job_id: str, status: str, what: str) -> str:
    """For a job that ended without saying why: print the last lines of its log on stderr
    and return the one-line error (ending with the log's last line)."""
    try:
        tail = log_tail(client.get_job_logs(job_id))
    except Exception:  # noqa: BLE001 - the logs are a courtesy; the status is the error
        tail = []
    if not tail:
        return f"{what} ended {status} (its log is empty: `ray job logs {job_id}`)"
    typer.echo(f"The last lines of {job_id}'s log:", err=True)
    for line in tail:
        typer.echo(f"  {line}", err=True)
    return f"{what} ended {status}: {tail[-1].strip()}"

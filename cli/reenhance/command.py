"""`ai-agents reenhance`: redo a tenant's past enhancements as a Ray Job.

The CLI only submits and watches. The job runs on the cluster, which already holds the database
URL and the secrets, so an operator's machine needs nothing but the Jobs API address and no
secret is ever put into a job's runtime_env. Progress comes from the job's own log lines (the
job reads it from the database): the same lines the Ray dashboard's Jobs view shows.
`--local` runs the same code in-process against the configured database instead.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import typer
from rich.console import Console

from cli.ray_jobs import (
    DEFAULT_ADDRESS,
    ENTRYPOINT,
    JOB_KIND,
    JobLogView,
    job_failure,
    job_info,
    jobs_address,
    jobs_client,
    latest_job_id,
    next_job_id,
    submit_with_retry,
)
from cli.reenhance.view import ProgressBar, outcome_table, progress_summary
from cli.support import (
    CommandError,
    DataDirOption,
    JsonOption,
    emit_json,
    fail,
    load_runtime,
    one_line_errors,
    run_async,
    service_pool,
)
from core.settings import Settings
from pipeline.batch.reenhance_job import duration, job_arguments, parse_ticket_ids, parse_when
from pipeline.batch.reenhance_plan import (
    BatchProgress,
    ReenhanceFilters,
    StatusFilter,
    default_status,
)
from pipeline.batch.reenhance_run import BatchOptions, plan_batch, run_batch

reenhance_app = typer.Typer(invoke_without_command=True)
AddressOption = typer.Option(
    None,
    "--address",
    help="Ray Jobs API (dashboard) URL. Default: $RAY_API_SERVER_ADDRESS, "
    f"else $RAY_ADDRESS, else {DEFAULT_ADDRESS}",
)
IdArgument = typer.Argument(
    ..., metavar="SUBMISSION_ID", help="The batch's submission id (or one run's Ray job id)"
)


def default_submission_id(tenant_id: str) -> str:
    return f"reenhance-{tenant_id}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def _build_filters(
    tenant: str | None,
    since: str | None,
    until: str | None,
    status: str | None,
    thumbs_down: bool,
    max_rating: int | None,
    tickets_file: Path | None,
    limit: int | None,
) -> ReenhanceFilters:
    if not tenant:
        raise CommandError("--tenant is required")
    tickets = None
    if tickets_file is not None:
        try:
            tickets = parse_ticket_ids(tickets_file.read_text())
        except OSError as exc:
            raise CommandError(f"cannot read {tickets_file}: {exc.strerror}") from None
        if not tickets:
            raise CommandError(f"no ticket ids in {tickets_file}")
    chosen = status or default_status(
        thumbs_down=thumbs_down, max_rating=max_rating, ticket_ids=tickets
    )
    return ReenhanceFilters(
        tenant_id=tenant,
        since=parse_when(since) if since else None,
        until=parse_when(until) if until else None,
        statuses=cast(StatusFilter, chosen),  # ReenhanceFilters refuses any other --status
        thumbs_down=thumbs_down,
        max_rating=max_rating,
        ticket_ids=tickets,
        limit=limit,
    )


def _watch(
    client: Any, job_id: str, bar: ProgressBar, poll_s: float = 1.0
) -> tuple[Any, JobLogView]:
    while True:
        status = client.get_job_status(job_id)
        view = JobLogView.scan(client.get_job_logs(job_id))
        bar.update(view.progress)
        if status.is_terminal():
            return status, view
        time.sleep(poll_s)


def _plan_text(plan: dict[str, Any]) -> str:
    cost = plan["estimate"]
    lines = [
        f"Dry run for tenant {plan['tenant']} (submission {plan['submission_id']}): "
        f"{plan['candidates']} item(s) would be re-enhanced "
        f"({plan['already_enqueued']} already enqueued by this submission)",
        f"  estimated {cost['llm_calls']} LLM call(s), {cost['sdp_calls']} SDP call(s); "
        f"{duration(cost['minutes_at_least'])} at least at the tenant's "
        f"{cost['llm_rate_per_minute']} LLM and {cost['sdp_rate_per_minute']} SDP calls/min",
    ]
    if plan["sample_ticket_ids"]:
        lines.append(
            "  tickets: "
            + ", ".join(plan["sample_ticket_ids"])
            + (" …" if plan["to_enqueue"] > len(plan["sample_ticket_ids"]) else "")
        )
    return "\n".join(lines)


def _print_plan(plan: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(plan)
    else:
        typer.echo(_plan_text(plan))


def _finish(
    batch_id: str,
    job_id: str | None,
    tenant: str,
    status: str,
    view: JobLogView,
    as_json: bool,
    message: str | None,
    fail_on_error: bool,
) -> None:
    progress = view.progress
    if as_json:
        emit_json(
            {
                "submission_id": batch_id,
                "job_id": job_id,
                "tenant": tenant,
                "job_status": status,
                "progress": progress.counts() if progress else None,
                "result": view.result,
                "error": view.error if status != "SUCCEEDED" else None,
            }
        )
    else:
        typer.echo(f"Re-enhancement {batch_id} for tenant {tenant}: {status}")
        if progress is not None:
            Console().print(outcome_table(progress))
    if status == "SUCCEEDED":
        return
    if status == "STOPPED":
        fail(
            f"{batch_id} was stopped; run the same command with --submission-id {batch_id} "
            "to finish it"
        )
    if fail_on_error and progress is not None and progress.failed and view.error is None:
        fail(f"{progress.failed} item(s) failed (--fail-on-error)")
    fail(view.error or (message or "the job failed").splitlines()[0])


@reenhance_app.callback(invoke_without_command=True)
@one_line_errors
def submit(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Tenant id"),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Received at/after: 2024-05-01, 2024-05-01T08:00 (UTC), or 7d / 12h ago",
    ),
    until: str | None = typer.Option(None, "--until", help="Received before (same forms)"),
    status: str | None = typer.Option(
        None,
        "--status",
        help="failed | context_only | any. Default: failed, or any when "
        "--thumbs-down, --max-rating or --tickets-file is given",
    ),
    thumbs_down: bool = typer.Option(False, "--thumbs-down", help="Notes given a thumbs-down"),
    max_rating: int | None = typer.Option(
        None, "--max-rating", help="Notes rated N or lower (1-5)"
    ),
    tickets_file: Path | None = typer.Option(
        None, "--tickets-file", help="Ticket ids, one per line (# comments)"
    ),
    limit: int | None = typer.Option(None, "--limit", help="At most N items, oldest first"),
    submission_id: str | None = typer.Option(
        None,
        "--submission-id",
        help="Batch id (default reenhance-<tenant>-<UTC time>); "
        "re-using one resumes that batch without duplicates",
    ),
    max_in_flight: int | None = typer.Option(
        None,
        "--max-in-flight",
        help="Batch jobs queued/running at once (default: half the "
        "per-tenant in-flight cap), so live tickets stay fast",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count and estimate; change nothing"),
    local: bool = typer.Option(False, "--local", help="Run in this process, not as a Ray Job"),
    no_wait: bool = typer.Option(False, "--no-wait", help="Submit and return"),
    fail_on_error: bool = typer.Option(
        False, "--fail-on-error", help="Exit 1 if any item ends failed"
    ),
    address: str | None = AddressOption,
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Re-enhance a tenant's past tickets (failed, context-only or disliked notes) as a Ray Job.

    Each selected ticket gets a new note that supersedes the earlier one.

    Batch jobs run below live webhooks' priority, at most --max-in-flight at a time.

    Runs as a Ray Job (dashboard: Jobs view) unless --local; `status`, `stop`, `logs` follow it.

    Example: ai-agents reenhance --tenant acme --status failed --since 7d --dry-run
    """
    if ctx.invoked_subcommand is not None:
        return
    filters = _build_filters(
        tenant, since, until, status, thumbs_down, max_rating, tickets_file, limit
    )
    batch_id = submission_id or default_submission_id(filters.tenant_id)
    if local:
        _run_local(filters, batch_id, max_in_flight, dry_run, data_dir, as_json, fail_on_error)
        return
    args = job_arguments(
        filters, batch_id, max_in_flight=max_in_flight, dry_run=dry_run, fail_on_error=fail_on_error
    )
    client = jobs_client(address)
    job_id, attempt = (
        (f"{batch_id}-dry-run-{int(time.time())}", 0) if dry_run else next_job_id(client, batch_id)
    )
    submit_with_retry(
        client,
        entrypoint=shlex.join([*ENTRYPOINT, *args]),
        submission_id=job_id,
        runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}},
        metadata={
            "kind": f"{JOB_KIND}-dry-run" if dry_run else JOB_KIND,
            "tenant": filters.tenant_id,
            "batch_id": batch_id,
            "attempt": str(attempt),
        },
    )
    if not as_json:
        run = f" (run {attempt} of batch {batch_id}: resumes it)" if attempt > 1 else ""
        typer.echo(
            f"Submitted {job_id}{run} to {jobs_address(address)}; logs: "
            f"ai-agents reenhance logs {batch_id} --follow",
            err=True,
        )
    if no_wait:
        if as_json:
            emit_json(
                {
                    "submission_id": batch_id,
                    "job_id": job_id,
                    "attempt": attempt,
                    "tenant": filters.tenant_id,
                    "job_status": "PENDING",
                }
            )
        return
    bar = ProgressBar(job_id, enabled=not as_json and not dry_run)
    try:
        with bar:
            job_status, view = _watch(client, job_id, bar)
    except KeyboardInterrupt:
        fail(f"detached; {job_id} keeps running (ai-agents reenhance stop {batch_id})", 130)
    if dry_run:
        if job_status.value != "SUCCEEDED" or view.result is None:
            fail(view.error or job_failure(client, job_id, job_status.value, "the dry run"))
        _print_plan(view.result, as_json)
        return
    message = job_info(client, job_id).message
    if job_status.value == "FAILED" and view.error is None and view.progress is None:
        message = job_failure(client, job_id, job_status.value, f"re-enhancement {job_id}")
    _finish(
        batch_id,
        job_id,
        filters.tenant_id,
        job_status.value,
        view,
        as_json,
        message,
        fail_on_error,
    )


def _run_local(
    filters: ReenhanceFilters,
    batch_id: str,
    max_in_flight: int | None,
    dry_run: bool,
    data_dir: str | None,
    as_json: bool,
    fail_on_error: bool,
) -> None:
    """Same plan and runner as the Ray Job; the service must be running against the same
    database, because this only enqueues and waits."""
    bar = ProgressBar(batch_id, enabled=not as_json and not dry_run)

    async def go() -> dict[str, Any] | BatchProgress:
        runtime = await load_runtime(data_dir)
        async with service_pool(runtime) as pool:
            plan = await plan_batch(pool, filters, batch_id)
            if dry_run:
                return {**plan.to_dict(), "dry_run": True}
            cap = max(1, (Settings().per_tenant_inflight or 8) // 2)
            options = BatchOptions(max_in_flight=max_in_flight or cap)
            return await run_batch(pool, plan, options=options, on_progress=bar.update)

    with bar:
        outcome = run_async(go())
    if isinstance(outcome, dict):
        _print_plan(outcome, as_json)
        return
    view = JobLogView(progress=outcome)
    status = "FAILED" if fail_on_error and outcome.failed else "SUCCEEDED"
    _finish(batch_id, None, filters.tenant_id, status, view, as_json, None, fail_on_error)


@reenhance_app.command("status")
@one_line_errors
def status_command(
    job_id: str = IdArgument, address: str | None = AddressOption, as_json: bool = JsonOption
) -> None:
    """Show a batch's job state and progress.

    Example: ai-agents reenhance status reenhance-acme-20240501T080000Z
    """
    client = jobs_client(address)
    run_id = latest_job_id(client, job_id)
    info = job_info(client, run_id)
    view = JobLogView.scan(client.get_job_logs(run_id))
    batch_id = (info.metadata or {}).get("batch_id", job_id)
    if as_json:
        emit_json(
            {
                "submission_id": batch_id,
                "job_id": run_id,
                "job_status": info.status.value,
                "message": info.message,
                "metadata": info.metadata,
                "entrypoint": info.entrypoint,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "progress": view.progress.counts() if view.progress else None,
                "result": view.result,
                "error": view.error,
            }
        )
        return
    tenant = (info.metadata or {}).get("tenant", "?")
    typer.echo(f"{batch_id}: {info.status.value} (tenant {tenant}; Ray job {run_id})")
    typer.echo(f"  progress: {progress_summary(view.progress)}")
    if view.error:
        typer.echo(f"  error: {view.error}")


@reenhance_app.command("stop")
@one_line_errors
def stop_command(
    job_id: str = IdArgument, address: str | None = AddressOption, as_json: bool = JsonOption
) -> None:
    """Stop a batch; re-submit with the same --submission-id to continue it later.

    Jobs already released to the queue (at most --max-in-flight) still finish.

    Example: ai-agents reenhance stop reenhance-acme-20240501T080000Z
    """
    client = jobs_client(address)
    run_id = latest_job_id(client, job_id)
    job_info(client, run_id)
    stopped = client.stop_job(run_id)
    status = client.get_job_status(run_id).value
    if as_json:
        emit_json(
            {"submission_id": job_id, "job_id": run_id, "stopped": stopped, "job_status": status}
        )
    else:
        typer.echo(
            f"stop requested for {run_id}" if stopped else f"{run_id} was not running ({status})"
        )


@reenhance_app.command("logs")
@one_line_errors
def logs_command(
    job_id: str = IdArgument,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends"),
    address: str | None = AddressOption,
) -> None:
    """Print a batch job's logs (the same as the dashboard's Jobs view).

    Example: ai-agents reenhance logs reenhance-acme-20240501T080000Z --follow
    """
    client = jobs_client(address)
    run_id = latest_job_id(client, job_id)
    job_info(client, run_id)
    if not follow:
        sys.stdout.write(client.get_job_logs(run_id))
        return

    async def tail() -> None:
        async for chunk in client.tail_job_logs(run_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    asyncio.run(tail())

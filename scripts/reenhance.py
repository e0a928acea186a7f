"""Ray Job entry point for batch re-enhancement (`ai-agents reenhance` submits it).

    ray job submit -- python -m scripts.reenhance --tenant acme --submission-id fix-1 --since 7d

It runs on the cluster, next to the service: `ray.init()` attaches to that cluster (for the
`ai_agents_reenhance_items` counters) and the database URL comes from the cluster's own
environment (AI_AGENTS_DATABASE_URL), so no secret ever travels in the job's runtime_env.
Every progress step is one line on stdout: that is what the dashboard's Jobs view shows, and
what the CLI parses back for its progress bar (`pipeline.reenhance.parse_progress_line`).

Exit codes: 0 when every item is completed or failed (failed items count as errors only with
`--fail-on-error`, exit 1); 2 when the batch could not start (bad filter, unknown tenant).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from db.pool import create_pool
from pipeline.metrics import Metrics
from pipeline.reenhance import (
    LOG_PREFIX,
    STATUS_FILTERS,
    BatchProgress,
    ReenhanceError,
    ReenhanceFilters,
    default_status,
    result_line,
)
from pipeline.reenhance_runner import BatchOptions, plan_batch, run_batch

_RELATIVE = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
# The shell line Ray runs must stay below Linux's 128 KiB per-argument limit.
MAX_TICKET_ARG_CHARS = 100_000


def parse_when(value: str, *, now: datetime | None = None) -> datetime:
    """ISO date or date-time (UTC unless it says otherwise), or relative: 7d, 12h, 30m ago."""
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        delta = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ReenhanceError(
            f"not a date: {value!r} (use 2024-05-01, 2024-05-01T08:00, or 7d / 12h / 30m)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_ticket_ids(text: str) -> list[str]:
    """Ids separated by commas, spaces or new lines; `#` starts a comment."""
    ids: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        ids.extend(t for t in re.split(r"[\s,;]+", line) if t)
    return list(dict.fromkeys(ids))


def job_arguments(
    filters: ReenhanceFilters,
    submission_id: str,
    *,
    max_in_flight: int | None = None,
    poll_s: float | None = None,
    fail_on_error: bool = False,
    dry_run: bool = False,
) -> list[str]:
    """The argv after `python -m scripts.reenhance` that reproduces these filters."""
    args = [
        "--tenant",
        filters.tenant_id,
        "--submission-id",
        submission_id,
        "--status",
        filters.statuses,
    ]
    if filters.since:
        args += ["--since", filters.since.isoformat()]
    if filters.until:
        args += ["--until", filters.until.isoformat()]
    if filters.thumbs_down:
        args.append("--thumbs-down")
    if filters.max_rating is not None:
        args += ["--max-rating", str(filters.max_rating)]
    if filters.ticket_ids is not None:
        joined = ",".join(filters.ticket_ids)
        if len(joined) > MAX_TICKET_ARG_CHARS:
            raise ReenhanceError(
                f"too many ticket ids for one job ({len(filters.ticket_ids)}); "
                "split the list over several submissions"
            )
        args += ["--tickets", joined]
    if filters.limit is not None:
        args += ["--limit", str(filters.limit)]
    if max_in_flight is not None:
        args += ["--max-in-flight", str(max_in_flight)]
    if poll_s is not None:
        args += ["--poll-s", str(poll_s)]
    if fail_on_error:
        args.append("--fail-on-error")
    if dry_run:
        args.append("--dry-run")
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.reenhance",
        description="Re-enhance a tenant's past enhancements (runs as a Ray Job).",
        epilog="Example: ray job submit --submission-id fix-1 -- python -m scripts.reenhance "
        "--tenant acme --submission-id fix-1 --status failed --since 7d",
    )
    parser.add_argument("--tenant", required=True)
    parser.add_argument(
        "--submission-id",
        required=True,
        help="Batch id; re-running the same id resumes, never duplicates",
    )
    parser.add_argument("--since", help="Received at or after (ISO date/time, or 7d/12h)")
    parser.add_argument("--until", help="Received before (ISO date/time, or 7d/12h)")
    parser.add_argument(
        "--status",
        choices=STATUS_FILTERS,
        help="Default: failed; any when feedback or tickets are given",
    )
    parser.add_argument("--thumbs-down", action="store_true")
    parser.add_argument("--max-rating", type=int)
    parser.add_argument("--tickets", help="Comma-separated ticket ids")
    parser.add_argument("--limit", type=int)
    parser.add_argument(
        "--max-in-flight",
        type=int,
        help="Batch jobs queued/running at once (default: half the per-tenant "
        "in-flight cap, AI_AGENTS_PER_TENANT_INFLIGHT)",
    )
    parser.add_argument("--poll-s", type=float, default=1.0)
    parser.add_argument("--fail-on-error", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    return parser


def filters_from_args(ns: argparse.Namespace) -> ReenhanceFilters:
    tickets = parse_ticket_ids(ns.tickets) if ns.tickets is not None else None
    status = ns.status or default_status(
        thumbs_down=ns.thumbs_down, max_rating=ns.max_rating, ticket_ids=tickets
    )
    return ReenhanceFilters(
        tenant_id=ns.tenant,
        since=parse_when(ns.since) if ns.since else None,
        until=parse_when(ns.until) if ns.until else None,
        statuses=status,
        thumbs_down=ns.thumbs_down,
        max_rating=ns.max_rating,
        ticket_ids=tickets,
        limit=ns.limit,
    )


def duration(minutes: float) -> str:
    if minutes < 1:
        return "under a minute"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def _emit(message: str) -> None:
    print(f"{LOG_PREFIX} {message}", flush=True)


def _summary(progress: BatchProgress) -> str:
    return (
        f"finished: {progress.done}/{progress.total} item(s): {progress.completed} "
        f"completed, {progress.context_only} context-only, {progress.skipped} skipped, "
        f"{progress.failed} failed"
    )


async def run(
    ns: argparse.Namespace,
    *,
    database_url: str,
    default_in_flight: int,
    metrics: Metrics | None,
    emit: Callable[[str], None] = _emit,
) -> int:
    filters = filters_from_args(ns)
    options = BatchOptions(max_in_flight=ns.max_in_flight or default_in_flight, poll_s=ns.poll_s)
    started = time.monotonic()
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        plan = await plan_batch(pool, filters, ns.submission_id)
        cost = plan.estimate
        emit(
            f"batch {plan.batch_id} for tenant {filters.tenant_id}: {plan.total} item(s) "
            f"({plan.already} already enqueued, {len(plan.pending)} to enqueue); estimated "
            f"{cost.llm_calls} LLM call(s), {cost.sdp_calls} SDP call(s), "
            f"{duration(cost.minutes_at_least)} at least at the tenant's rate limits"
        )
        if ns.dry_run:
            print(result_line({**plan.to_dict(), "dry_run": True}), flush=True)
            return 0
        emit(
            f"releasing at most {options.max_in_flight} job(s) at a time (priority below live "
            "webhooks)"
        )
        progress = await run_batch(
            pool,
            plan,
            options=options,
            metrics=metrics,
            on_progress=lambda p: print(p.log_line(), flush=True),
        )
    finally:
        await pool.close()
    emit(_summary(progress))
    print(
        result_line(
            {
                "tenant": filters.tenant_id,
                "submission_id": ns.submission_id,
                "dry_run": False,
                **progress.counts(),
                "elapsed_s": round(time.monotonic() - started, 1),
            }
        ),
        flush=True,
    )
    return 1 if ns.fail_on_error and progress.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    from serve_app.settings import Settings

    settings = Settings()
    if settings.database_url is None:
        print(
            f"{LOG_PREFIX} error: AI_AGENTS_DATABASE_URL is not set in the cluster's environment",
            file=sys.stderr,
            flush=True,
        )
        return 2
    import ray

    from actors.ray_metrics import RayMetrics

    ray.init(logging_level=logging.WARNING, log_to_driver=False)
    _emit(f"attached to the Ray cluster at {ray.get_runtime_context().gcs_address}")
    try:
        code = asyncio.run(
            run(
                ns,
                database_url=settings.database_url.get_secret_value(),
                default_in_flight=max(1, (settings.per_tenant_inflight or 8) // 2),
                metrics=RayMetrics(),
            )
        )
    except ReenhanceError as exc:
        print(f"{LOG_PREFIX} error: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - one readable line for the CLI, then the detail
        detail = str(exc).splitlines()[0] if str(exc) else ""
        print(f"{LOG_PREFIX} error: {type(exc).__name__}: {detail}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 2
    finally:
        # Shutting down pushes the last counter values to the metrics agent; without it a
        # driver shorter than one report interval (10 s) would take them with it.
        ray.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())

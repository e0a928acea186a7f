"""Ray Job entry point for batch re-enhancement (`ai-agents reenhance` submits it).

    ray job submit -- python -m scripts.reenhance --tenant acme --submission-id fix-1 --since 7d

It runs on the cluster, next to the service: `ray.init()` attaches to that cluster (for the
`ai_agents_reenhance_items` counters) and the database URL comes from the cluster's own
environment (AI_AGENTS_DATABASE_URL), so no secret ever travels in the job's runtime_env.
Every progress step is one line on stdout: that is what the dashboard's Jobs view shows, and
what the CLI parses back for its progress bar (`pipeline.batch.reenhance_plan.parse_progress_line`).

Exit codes: 0 when every item is completed or failed (failed items count as errors only with
`--fail-on-error`, exit 1); 2 when the batch could not start (bad filter, unknown tenant).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence

from db.pool import create_pool
from pipeline.batch.reenhance_job import build_parser, duration, filters_from_args
from pipeline.batch.reenhance_plan import (
    LOG_PREFIX,
    BatchProgress,
    ReenhanceError,
    result_line,
)
from pipeline.batch.reenhance_run import BatchOptions, plan_batch, run_batch
from pipeline.observability.metrics import Metrics


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
    from core.settings import Settings

    settings = Settings()
    if settings.database_url is None:
        print(
            f"{LOG_PREFIX} error: AI_AGENTS_DATABASE_URL is not set in the cluster's environment",
            file=sys.stderr,
            flush=True,
        )
        return 2
    import ray

    from actors.replica_setup import RayMetrics

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

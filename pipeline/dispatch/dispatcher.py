"""The dispatcher's logic: claim queued jobs fairly, hand them to the Enhancer pool, and make
sure nothing that was accepted is ever lost.

- Every query it runs is in ``db.repositories.dispatch``; no SQL here.
- Which jobs to claim each cycle (weighted fair share, below-share top-ups when the limit is
  full, a failing tenant left out, intake first during a webhook storm) is decided by
  ``pipeline.dispatch.claim_planner.ClaimPlanner``; this class runs the lifecycle around it.
- How much may be in flight follows capacity: running Enhancer replicas x their per-replica
  target (``pipeline.dispatch.scaling.inflight_cap``), bounded by
  ``AI_AGENTS_DISPATCH_MAX_INFLIGHT``, and, with ``config.admission``, no more than what the
  pipeline measurably completes (``pipeline.dispatch.admission``), so a CPU-bound pipeline's
  excess waits in the durable queue under fair share instead of in Serve's queues.
- Every reap tick: jobs of disabled tenants end ``skipped`` ("tenant disabled"), and the
  claimable backlog is measured and handed to ``on_backlog`` (metrics and autoscaling).
- Woken by ``LISTEN ai_agents_jobs`` the moment a webhook commits; polls as a fallback. The
  same notifications feed the planner (arrival rate for intake priority, tenants with work).
- A job whose hand-off fails (replica crashed, back-pressure) is put back with its error; a job
  whose lease expires (worker died silently) is re-queued by the reaper; on start every job left
  `running` by an earlier dispatcher incarnation is re-queued. Attempts are bounded and a job
  out of attempts ends `failed` with its last error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from core import metric_catalogue as mc
from db.pool import tenant_transaction
from db.repositories import dispatch as queue
from db.repositories.enhancements import fail_or_retry
from pipeline.dispatch.admission import AdaptiveLimit, AdmissionConfig
from pipeline.dispatch.claim_planner import ClaimPlanner
from pipeline.dispatch.intake_priority import IntakePriority
from pipeline.dispatch.scaling import BacklogReport, inflight_cap
from pipeline.observability.metrics import InMemoryMetrics, Metrics

log = logging.getLogger(__name__)

# How long `stop()` waits for its loops to end after cancelling them.
STOP_WAIT_S = 10.0


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    tenant_id: str
    ticket_id: str
    attempts: int
    lease_token: str
    trace_context: dict[str, str] | None = None
    priority: int = 0


Submit = Callable[[ClaimedJob], Awaitable[Any]]
OnBacklog = Callable[[BacklogReport], None]


def retry_delay_s(attempts: int, base_s: float, cap_s: float = 300.0) -> float:
    return min(cap_s, base_s * (2 ** max(0, attempts - 1)))


@dataclass
class DispatcherConfig:
    per_tenant_cap: int | None = None  # service-wide hard cap; None: fair share only
    max_inflight: int = 256  # upper bound of the in-flight cap
    target_per_replica: float = 192.0  # the Enhancer's target_ongoing_requests
    batch: int = 64
    lease_s: int = 300
    poll_s: float = 2.0
    reap_every_s: float = 5.0
    retry_base_s: float = 5.0
    tenant_quarantine_s: float = 30.0  # how long a tenant whose claim failed is left out
    intake_priority_rate: float = 0.0  # webhooks/s above which intake comes first; 0: off
    intake_priority_inflight: int = 2  # the in-flight cap meanwhile
    intake_priority_hold_s: float = 3.0  # how long after the rate falls back
    admission: AdmissionConfig | None = None  # adaptive admission; None: the replica cap only


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        submit: Submit,
        *,
        listen_url: str,
        config: DispatcherConfig | None = None,
        owner: str | None = None,
        metrics: Metrics | None = None,
        on_backlog: OnBacklog | None = None,
    ) -> None:
        self._pool = pool
        self._submit = submit
        self._listen_url = listen_url
        self.config = config or DispatcherConfig()
        self.owner = owner or f"dispatcher-{uuid.uuid4()}"
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._inflight_by_tenant: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self.claimed_total = 0
        self.handoff_failures = 0
        self.recovered_on_start = 0
        self.last_loop_at = 0.0
        self._metrics = metrics or InMemoryMetrics()
        self._on_backlog = on_backlog
        self.running_replicas: int | None = None  # Enhancer replicas, from the policy's report
        self.backlog: BacklogReport | None = None
        self.skipped_disabled = 0
        self._reported_tenants: set[str] = set()
        admission = self.config.admission
        self.admission = AdaptiveLimit(admission) if admission is not None else None
        self._recorded_limit: int | None = None
        self._planner = ClaimPlanner(
            pool,
            self.owner,
            intake=IntakePriority(
                rate_per_s=self.config.intake_priority_rate,
                inflight=self.config.intake_priority_inflight,
                hold_s=self.config.intake_priority_hold_s,
            ),
            metrics=self._metrics,
            measure_backlog=self.measure_backlog,
            batch=self.config.batch,
            lease_s=self.config.lease_s,
            per_tenant_cap=self.config.per_tenant_cap,
            tenant_quarantine_s=self.config.tenant_quarantine_s,
        )

    @property
    def intake(self) -> IntakePriority:
        """The webhook arrival rate and storm state the claim consults (status, tests)."""
        return self._planner.intake

    @property
    def tenant_failures(self) -> int:
        """Per-tenant claims that failed (each left its tenant out for a while)."""
        return self._planner.tenant_failures

    @property
    def replica_cap(self) -> int:
        """Running Enhancer replicas x their target, within ``max_inflight``."""
        return inflight_cap(
            self.running_replicas, self.config.target_per_replica, self.config.max_inflight
        )

    @property
    def inflight_limit(self) -> int:
        cap = self.replica_cap
        return cap if self.admission is None else min(cap, self.admission.limit)

    def _update_admission(self) -> None:
        if self.admission is None:
            return
        window_started = self.admission.window_started
        self.admission.update()
        limit = self.inflight_limit
        # on a change, and again each admission window: a scrape long after the last change
        # still finds the gauge
        if limit != self._recorded_limit or self.admission.window_started != window_started:
            self._metrics.set(mc.DISPATCH_INFLIGHT_LIMIT, limit, {})
            self._recorded_limit = limit

    async def start(self) -> None:
        recovered = await queue.requeue_jobs(self._pool, self.owner, expired_only=False)
        self.recovered_on_start = len(recovered)
        if recovered:
            log.warning("re-queued %d job(s) left running by an earlier dispatcher", len(recovered))
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="dispatcher-listen"),
            asyncio.create_task(self._run_forever(), name="dispatcher-loop"),
        ]

    async def stop(self) -> None:
        """Cancel the loops and wait until they have ended. ``asyncio.wait`` rather than
        awaiting each task: it neither raises the loops' own cancellation nor hides the
        caller's. Jobs in flight keep their leases; a restarted dispatcher re-queues them."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)
            if pending:
                log.error(
                    "dispatcher loop(s) still running %.0f s after stop: %s",
                    STOP_WAIT_S,
                    ", ".join(t.get_name() for t in pending),
                )
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    def status(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "inflight": len(self._inflight),
            "inflight_limit": self.inflight_limit,
            "replica_cap": self.replica_cap,
            "admission": self.admission.status() if self.admission is not None else None,
            "running_replicas": self.running_replicas,
            "intake_priority": self.intake.active(),
            "intake_rate_per_s": round(self.intake.rate(), 1),
            "intake_priority_activations": self.intake.activations,
            "backlog": self.backlog.claimable if self.backlog else None,
            "skipped_disabled": self.skipped_disabled,
            "tenant_failures": self.tenant_failures,
            "quarantined": self._planner.quarantined,
            "claimed_total": self.claimed_total,
            "handoff_failures": self.handoff_failures,
            "recovered_on_start": self.recovered_on_start,
            "listening": self._listener is not None and not self._listener.is_closed(),
            "loop_age_s": round(time.monotonic() - self.last_loop_at, 3)
            if self.last_loop_at
            else None,
        }

    @property
    def running(self) -> bool:
        """Whether any of its loops is still running (false after ``stop()``)."""
        return any(not t.done() for t in self._tasks)

    def healthy(self) -> bool:
        alive = all(not t.done() for t in self._tasks) and bool(self._tasks)
        fresh = time.monotonic() - self.last_loop_at < max(30.0, 5 * self.config.poll_s)
        return alive and fresh

    # -- loops ------------------------------------------------------------------------------
    async def _listen_forever(self) -> None:
        while True:
            try:
                self._listener = await queue.listen_for_jobs(self._listen_url, self._notified)
                self._wake.set()
                while not self._listener.is_closed():  # noqa: ASYNC110 - asyncpg has no close event
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - polling covers us while we reconnect
                log.warning(
                    "LISTEN connection lost (%s); polling until it is back", type(exc).__name__
                )
            await asyncio.sleep(1.0)

    def _notified(self, payload: str) -> None:
        self._planner.notified(payload)
        if len(self._inflight) >= self.inflight_limit and self._inflight_by_tenant[payload]:
            return  # a finishing job wakes the loop; a tenant with nothing in flight may not wait
        if self._planner.trickle_full(payload, self._inflight_by_tenant):
            return  # a storm at its trickle needs no wake-ups
        self._wake.set()

    async def _run_forever(self) -> None:
        last_reap = 0.0
        while True:
            self.last_loop_at = time.monotonic()
            self._update_admission()
            try:
                if time.monotonic() - last_reap >= self.config.reap_every_s:
                    last_reap = time.monotonic()
                    await self._reap()
                    await self._housekeeping()
                elif self.backlog is not None and self.backlog.intake_priority != (
                    self.intake.active()
                ):
                    await self.measure_backlog()  # tell the policy now, not at the next tick
                claimed = await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be restarting
                log.error("dispatch cycle failed: %s", exc)
                claimed = 0
                await asyncio.sleep(self.config.poll_s)
            room = self.inflight_limit - len(self._inflight)
            if claimed and room > 0:
                continue  # there may be more waiting
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives just after the wake-up completed the wait, so the loop would outlive
            # stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.poll_s):
                    await self._wake.wait()

    async def _reap(self) -> None:
        rows = await queue.requeue_jobs(self._pool, self.owner, expired_only=True)
        for row in rows:
            log.warning(
                "lease expired for enhancement %s (tenant %s) -> %s",
                row["id"],
                row["tenant_id"],
                row["status"],
            )

    async def _housekeeping(self) -> None:
        """Skip disabled tenants' jobs and measure the backlog; each step on its own, so a
        failure of one never stops the claim loop (the next tick tries again)."""
        try:
            skipped = await queue.skip_disabled_jobs(self._pool)
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("skipping disabled tenants' jobs failed: %s", exc)
        else:
            self._count_skipped(skipped)
        try:
            await self.measure_backlog()
        except (asyncpg.PostgresError, OSError) as exc:
            log.error("measuring the backlog failed: %s", exc)

    def _count_skipped(self, rows: list[asyncpg.Record]) -> None:
        per_tenant: dict[str, int] = {}
        for row in rows:
            per_tenant[row["tenant_id"]] = per_tenant.get(row["tenant_id"], 0) + 1
        for tenant, n in per_tenant.items():
            log.warning("tenant %s is disabled: %d queued job(s) skipped", tenant, n)
            self._metrics.inc(mc.ENHANCEMENTS, {"tenant": tenant, "status": "skipped"}, n)
        self.skipped_disabled += len(rows)

    async def measure_backlog(self) -> BacklogReport:
        """The claimable backlog now (one query), recorded as ``ai_agents_backlog_jobs``."""
        rows = await queue.dispatch_backlog(self._pool)
        per_tenant = {r["tenant_id"]: int(r["claimable"]) for r in rows}
        report = BacklogReport(
            claimable=sum(per_tenant.values()),
            running=sum(int(r["running"]) for r in rows),
            per_tenant=per_tenant,
            intake_priority=self.intake.active(),
        )
        for tenant in self._reported_tenants - per_tenant.keys():
            self._metrics.set(mc.BACKLOG_JOBS, 0, {"tenant": tenant})  # drained: say so
        for tenant, n in per_tenant.items():
            self._metrics.set(mc.BACKLOG_JOBS, n, {"tenant": tenant})
        self._reported_tenants = set(per_tenant)
        self._planner.backlog_measured(per_tenant)
        self._metrics.set(mc.INTAKE_PRIORITY, 1 if report.intake_priority else 0, {})
        self.backlog = report
        if self._on_backlog is not None:
            try:
                self._on_backlog(report)
            except Exception as exc:  # noqa: BLE001 - publishing must not stop dispatch
                log.warning("publishing the backlog failed: %s", exc)
        return report

    async def _claim(self) -> int:
        limit = self.inflight_limit
        room = limit - len(self._inflight)
        rows = await self._planner.claim(limit, room, self._inflight_by_tenant)
        for row in rows:
            job = ClaimedJob(
                id=str(row["id"]),
                tenant_id=row["tenant_id"],
                ticket_id=row["ticket_id"],
                attempts=row["attempts"],
                lease_token=str(row["lease_token"]),
                trace_context=row["trace_context"],
                priority=row["priority"],
            )
            task = asyncio.create_task(self._handle(job), name=f"job-{job.id}")
            self._inflight.add(task)
            self._inflight_by_tenant[job.tenant_id] += 1
        self.claimed_total += len(rows)
        if self.admission is not None:
            self.admission.inflight(len(self._inflight))
        return len(rows)

    async def _handle(self, job: ClaimedJob) -> None:
        started = time.monotonic()
        try:
            await self._submit(job)
            if self.admission is not None:
                self.admission.completed(time.monotonic() - started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - replica death, back-pressure, anything
            self.handoff_failures += 1
            error = f"hand-off failed: {type(exc).__name__}: {str(exc)[:300]}"
            log.warning("enhancement %s: %s", job.id, error)
            with contextlib.suppress(Exception):
                async with tenant_transaction(self._pool, job.tenant_id) as conn:
                    await fail_or_retry(
                        conn,
                        uuid.UUID(job.id),
                        uuid.UUID(job.lease_token),
                        error=error,
                        retryable=True,
                        retry_in_s=retry_delay_s(job.attempts, self.config.retry_base_s),
                    )
        finally:
            self._inflight.discard(asyncio.current_task())
            self._inflight_by_tenant[job.tenant_id] -= 1
            if self._inflight_by_tenant[job.tenant_id] <= 0:
                del self._inflight_by_tenant[job.tenant_id]
            self._wake.set()

"""Which queued jobs the Dispatcher claims this cycle; the Dispatcher itself keeps the job
lifecycle (listen, loop, reap, hand-off, lease recovery, status) and asks this class for rows.

- Every query it runs is in ``db.repositories.dispatch``; no SQL here.
- Claims go through ``app_claim_jobs``: work-conserving weighted fair share across tenants (a
  tenant alone may take every free slot; tenants with backlog converge to running in proportion
  to their ``dispatch_weight``; a tenant's ``max_inflight`` is a hard cap), ``FOR UPDATE SKIP
  LOCKED``, a lease, one round trip. When the in-flight limit is full, a tenant with work
  waiting and less than an equal share in flight is still claimed up to that share at once
  (the limit is exceeded by the missing shares until jobs finish; nothing is preempted).
- One tenant cannot stall dispatch for all: if the claim across tenants fails, each tenant with
  backlog is claimed on its own; a tenant whose claim fails is logged, counted
  (``ai_agents_dispatch_failures{tenant}``) and left out for a while, the others flow.
- Intake first during a storm (``pipeline.dispatch.intake_priority``): the Dispatcher's job
  notifications measure the webhook arrival rate per tenant; above
  ``AI_AGENTS_INTAKE_PRIORITY_RATE`` the storming tenants' jobs share a trickle of slots, so the
  node's CPU goes to acknowledging SDP, while quiet tenants are claimed one by one at the normal
  cap. The held-back jobs wait, durable.

Two records of tenants heard from, because they answer different questions: ``_pending`` here
is who may have claimable jobs now (fed by every new-job notification and each backlog
measurement, no clock; for the below-share top-up), ``IntakePriority._seen_until`` is who sent
a webhook within ``hold_s`` (notifications only, on the intake's clock; for the quiet tenants
of a storm, so a tenant with only old backlog is not among them).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg

from core import metric_catalogue as mc
from db.repositories import dispatch as queue
from pipeline.dispatch.intake_priority import RETRY_PAYLOAD, IntakePriority
from pipeline.dispatch.scaling import BacklogReport
from pipeline.observability.metrics import Metrics

log = logging.getLogger(__name__)

MAX_BELOW_SHARE_CLAIMS = 16  # tenants claimed one by one per cycle when the limit is full

MeasureBacklog = Callable[[], Awaitable[BacklogReport]]


class ClaimPlanner:
    """The per-cycle claim decision. It holds no in-flight bookkeeping of its own: the
    Dispatcher passes its per-tenant in-flight counts in, so there is one record of what runs."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        owner: str,
        *,
        intake: IntakePriority,
        metrics: Metrics,
        measure_backlog: MeasureBacklog,
        batch: int,
        lease_s: int,
        per_tenant_cap: int | None,
        tenant_quarantine_s: float,
    ) -> None:
        self._pool = pool
        self._owner = owner
        self.intake = intake
        self._metrics = metrics
        # the Dispatcher's own measurement: it also records the metric and tells the policy
        self._measure_backlog = measure_backlog
        self._batch = batch
        self._lease_s = lease_s
        self._per_tenant_cap = per_tenant_cap
        self._tenant_quarantine_s = tenant_quarantine_s
        self._pending: set[str] = set()  # tenants that may have claimable jobs right now
        self._quarantined: dict[str, float] = {}  # tenant -> monotonic time it may return
        self.tenant_failures = 0

    @property
    def quarantined(self) -> list[str]:
        """Tenants left out after a failed claim (expired entries are removed at the next
        degraded claim, so they are listed until then)."""
        return sorted(self._quarantined)

    def notified(self, payload: str) -> None:
        """One ``NOTIFY ai_agents_jobs`` heard: an arrival for intake priority, and a tenant
        that now has a job to claim (a re-queue names no tenant)."""
        self.intake.notified(payload)
        if payload != RETRY_PAYLOAD:
            self._pending.add(payload)

    def backlog_measured(self, per_tenant: dict[str, int]) -> None:
        """Tenants with claimable jobs may be claimed below share even if they sent nothing."""
        self._pending |= {t for t, n in per_tenant.items() if n > 0}

    def trickle_full(self, tenant: str, inflight_by_tenant: Counter[str]) -> bool:
        """A storming tenant's new job cannot be claimed until a trickle slot frees up."""
        return self.intake.storming(tenant) and self._held_back_room(set(), inflight_by_tenant) <= 0

    def _held_back_room(self, quiet: set[str], inflight_by_tenant: Counter[str]) -> int:
        """Free slots of the trickle that all but the quiet tenants share during a storm."""
        held = sum(n for t, n in inflight_by_tenant.items() if t not in quiet)
        return self.intake.inflight - held

    async def claim(
        self, limit: int, room: int, inflight_by_tenant: Counter[str]
    ) -> list[asyncpg.Record]:
        """The rows to hand off now. ``limit`` is the in-flight limit, ``room`` what is free of
        it; when the claim fills it, tenants below an equal share are still topped up."""
        rows: list[asyncpg.Record] = []
        if room > 0:
            batch = min(room, self._batch)
            if self.intake.active():
                rows = await self._claim_with_intake_priority(batch, inflight_by_tenant)
            else:
                rows = await self._claim_fair(batch)
        if len(rows) >= room and self._pending:
            rows += await self._claim_below_share(limit, rows, inflight_by_tenant)
        return rows

    async def _claim_below_share(
        self, limit: int, claiming: list[asyncpg.Record], inflight_by_tenant: Counter[str]
    ) -> list[asyncpg.Record]:
        """The limit is full: a tenant with work waiting and fewer than an equal share of the
        limit in flight is claimed up to that share at once. No job is preempted, so the limit
        is exceeded by at most the shares still missing, until the tenants' jobs finish; this
        is what lets a tenant that becomes active get its share within one dispatch cycle."""
        running = Counter(inflight_by_tenant)
        running.update(row["tenant_id"] for row in claiming)
        share = max(1, limit // max(1, len(set(running) | self._pending)))
        now = time.monotonic()
        rows: list[asyncpg.Record] = []
        for tenant in sorted(self._pending, key=lambda t: running[t])[:MAX_BELOW_SHARE_CLAIMS]:
            missing = share - running[tenant]
            if (
                missing <= 0
                or self.intake.storming(tenant)
                or self._quarantined.get(tenant, 0) > now
            ):
                continue  # (a quarantined tenant stays pending: it has work once it is back)
            got = await self._claim_for_tenant(tenant, missing, now)
            if len(got) < missing:
                self._pending.discard(tenant)  # nothing more to claim until it sends again
            rows += got
        return rows

    async def _claim_fair(self, limit: int) -> list[asyncpg.Record]:
        try:
            return await self._claim_rows(limit, None)
        except asyncpg.PostgresConnectionError:
            raise
        except asyncpg.PostgresError as exc:
            log.error(
                "claim across tenants failed (%s: %s); claiming tenant by tenant",
                type(exc).__name__,
                exc,
            )
            return await self._claim_tenant_by_tenant(limit)

    async def _claim_with_intake_priority(
        self, limit: int, inflight_by_tenant: Counter[str]
    ) -> list[asyncpg.Record]:
        """A storm (``pipeline.dispatch.intake_priority``): the storming tenants and any old backlog
        share the trickle, claimed fairly; each quiet tenant is claimed on its own."""
        quiet = self.intake.quiet_tenants()
        rows: list[asyncpg.Record] = []
        trickle = min(limit, self._held_back_room(set(quiet), inflight_by_tenant))
        if trickle > 0:
            rows += await self._claim_fair(trickle)
        now = time.monotonic()
        for tenant in quiet:
            if len(rows) >= limit:
                break
            rows += await self._claim_for_tenant(tenant, limit - len(rows), now)
        return rows

    async def _claim_rows(self, limit: int, tenant_id: str | None) -> list[asyncpg.Record]:
        return await queue.claim_jobs(
            self._pool,
            self._owner,
            limit,
            per_tenant_cap=self._per_tenant_cap,
            lease_s=self._lease_s,
            tenant_id=tenant_id,
        )

    async def _claim_tenant_by_tenant(self, limit: int) -> list[asyncpg.Record]:
        """Degraded mode: an equal slice of ``limit`` per tenant with backlog, each claimed on its
        own so that a tenant whose claim fails (a poisoned setting or job) is left out."""
        now = time.monotonic()
        self._quarantined = {t: until for t, until in self._quarantined.items() if until > now}
        report = await self._measure_backlog()
        tenants = [
            t for t, n in sorted(report.per_tenant.items()) if n > 0 and t not in self._quarantined
        ]
        rows: list[asyncpg.Record] = []
        share = max(1, -(-limit // len(tenants))) if tenants else 0
        for tenant in tenants:
            if len(rows) >= limit:
                break
            rows += await self._claim_for_tenant(tenant, min(share, limit - len(rows)), now)
        return rows

    async def _claim_for_tenant(self, tenant: str, limit: int, now: float) -> list[asyncpg.Record]:
        """One tenant's claim; if it fails, the tenant is reported and left out for a while
        (nothing is claimed for it until then)."""
        if self._quarantined.get(tenant, 0.0) > now:
            return []
        try:
            return await self._claim_rows(limit, tenant)
        except asyncpg.PostgresConnectionError:
            raise
        except asyncpg.PostgresError as exc:
            self.tenant_failures += 1
            self._quarantined[tenant] = now + self._tenant_quarantine_s
            self._metrics.inc(mc.DISPATCH_FAILURES, {"tenant": tenant})
            log.error(
                "claim for tenant %s failed (%s: %s); left out for %.0f s",
                tenant,
                type(exc).__name__,
                exc,
                self._tenant_quarantine_s,
            )
            return []

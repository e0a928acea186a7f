"""Retention: finished jobs, feedback, audit rows and LLM usage ledger rows deleted once they
are older than their tenant's ``retention_days_*`` (or the service's
``AI_AGENTS_RETENTION_DAYS_*``). The ledger is a billing record, so its default is the longest
(400 days: a year of monthly invoices and the month after); its monthly sums, which the budgets
and the spend counters read, are kept.

``RetentionTask`` runs every ``every_s`` inside the Dispatcher's replica, one deployment for the
whole service, so no two purges compete for the same rows. Each run walks the tenants and, per
table, deletes the oldest expired rows in batches of ``batch``: each batch is its own short
transaction, expired rows another transaction holds are skipped, a pause separates batches,
and at most ``max_batches`` batches per tenant and table run before the next tenant's turn (the
next run carries on). Intake, claims and jobs therefore never wait on it. A failing run (the
database restarting) is logged and the next one tries again.

What it deleted is counted in PostgreSQL (``retention_purges``), where the ingress' ``/metrics``
reads it (``ai_agents_retention_purged_total``, ``ai_agents_oldest_row_age_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg

from core.settings import Settings
from core.tenant_types import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN
from db.pool import tenant_transaction
from db.repositories.lifecycle import retention as repo
from db.repositories.tenants import list_tenants

log = logging.getLogger(__name__)

TABLES = ("enhancements", "enhancement_feedback", "audit_log", "llm_usage")
DAY_S = 86_400.0


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each retained table keeps its rows."""

    jobs: float = 90.0
    feedback: float = 365.0
    audit: float = 365.0
    llm_usage: float = 400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The service's defaults (``AI_AGENTS_RETENTION_DAYS_*``)."""
        return cls(
            jobs=settings.retention_days_jobs,
            feedback=settings.retention_days_feedback,
            audit=settings.retention_days_audit,
            llm_usage=settings.retention_days_llm_usage,
        )

    def days(self, table: str) -> float:
        return {
            "enhancements": self.jobs,
            "enhancement_feedback": self.feedback,
            "llm_usage": self.llm_usage,
        }.get(table, self.audit)

    def as_dict(self) -> dict[str, float]:
        return {
            "jobs": self.jobs,
            "feedback": self.feedback,
            "audit": self.audit,
            "llm_usage": self.llm_usage,
        }

    def for_tenant(self, settings: Any) -> RetentionPolicy:
        """This policy with the tenant's own settings on top. Settings are read leniently: a
        value stored behind the admin API's back (not a number) keeps the service's value, one
        out of bounds is clamped, so one tenant's row can never stop the purge for all."""
        if not isinstance(settings, dict):
            return self
        changes: dict[str, float] = {}
        for name, key in (
            ("jobs", "retention_days_jobs"),
            ("feedback", "retention_days_feedback"),
            ("audit", "retention_days_audit"),
            ("llm_usage", "retention_days_llm_usage"),
        ):
            value = settings.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                changes[name] = min(max(float(value), RETENTION_DAYS_MIN), RETENTION_DAYS_MAX)
        return replace(self, **changes)


@dataclass
class RetentionConfig:
    every_s: float = 300.0
    batch: int = 500
    max_batches: int = 20  # per tenant and table and run
    pause_s: float = 0.02  # between batches
    first_run_after_s: float = 10.0  # after start, so a starting replica is not slowed


@dataclass
class RetentionRun:
    started_at: float
    seconds: float = 0.0
    purged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))


class RetentionTask:
    def __init__(
        self,
        pool: asyncpg.Pool,
        defaults: RetentionPolicy | None = None,
        config: RetentionConfig | None = None,
    ) -> None:
        self._pool = pool
        self.defaults = defaults or RetentionPolicy()
        self.config = config or RetentionConfig()
        self.runs = 0
        self.failures = 0
        self.purged_total = dict.fromkeys(TABLES, 0)
        self.last_run: RetentionRun | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run_forever(), name="retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def status(self) -> dict[str, Any]:
        last = self.last_run
        return {
            "running": self.running,
            "runs": self.runs,
            "failures": self.failures,
            "purged_total": dict(self.purged_total),
            "last_run_s": round(last.seconds, 3) if last else None,
            "last_run_purged": dict(last.purged) if last else None,
        }

    async def run_forever(self) -> None:
        await asyncio.sleep(min(self.config.first_run_after_s, self.config.every_s))
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be restarting; next run
                self.failures += 1
                log.error("retention run failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.config.every_s)

    async def run_once(self) -> RetentionRun:
        """One pass over every tenant's retained tables, then the audit rows of no tenant."""
        run = RetentionRun(started_at=time.time())
        started = time.perf_counter()
        for tenant in await list_tenants(self._pool):
            policy = self.defaults.for_tenant(tenant["settings"])
            for table in TABLES:
                run.purged[table] += await self._purge(tenant["id"], table, policy.days(table))
        run.purged["audit_log"] += await self._purge(None, "audit_log", self.defaults.audit)
        run.seconds = time.perf_counter() - started
        self.runs += 1
        for table, n in run.purged.items():
            self.purged_total[table] += n
        self.last_run = run
        if any(run.purged.values()):
            log.info(
                "retention purged %s in %.1f s",
                ", ".join(f"{n} {table}" for table, n in run.purged.items() if n),
                run.seconds,
            )
        return run

    async def _purge(self, tenant_id: str | None, table: str, days: float) -> int:
        """The tenant's expired rows of ``table``, oldest first, batch by batch."""
        older_than_s = days * DAY_S
        total = 0
        for _ in range(self.config.max_batches):
            n = await self._batch(tenant_id, table, older_than_s)
            total += n
            if n < self.config.batch:
                break
            await asyncio.sleep(self.config.pause_s)
        return total

    async def _batch(self, tenant_id: str | None, table: str, older_than_s: float) -> int:
        batch = self.config.batch
        if table == "audit_log":
            return await repo.purge_audit(self._pool, tenant_id, older_than_s, batch)
        assert tenant_id is not None
        if table == "llm_usage":
            return await repo.purge_llm_usage(self._pool, tenant_id, older_than_s, batch)
        async with tenant_transaction(self._pool, tenant_id) as conn:
            if table == "enhancements":
                return await repo.purge_jobs(conn, older_than_s, batch)
            return await repo.purge_feedback(conn, older_than_s, batch)

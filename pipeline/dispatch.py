"""The dispatcher's logic: claim queued jobs fairly, hand them to the Enhancer pool, and make
sure nothing that was accepted is ever lost.

- Claims go through ``app_claim_jobs`` (round-robin across tenants, per-tenant in-flight cap,
  ``FOR UPDATE SKIP LOCKED``, a lease).
- Woken by ``LISTEN ai_agents_jobs`` the moment a webhook commits; polls as a fallback.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from db.pool import tenant_transaction
from db.repositories.enhancements import JOBS_CHANNEL, fail_or_retry

log = logging.getLogger("ai_agents.dispatcher")


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


def retry_delay_s(attempts: int, base_s: float, cap_s: float = 300.0) -> float:
    return min(cap_s, base_s * (2 ** max(0, attempts - 1)))


@dataclass
class DispatcherConfig:
    per_tenant_cap: int = 8
    max_inflight: int = 256
    batch: int = 64
    lease_s: int = 300
    poll_s: float = 2.0
    reap_every_s: float = 5.0
    retry_base_s: float = 5.0


class JobDispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        submit: Submit,
        *,
        listen_url: str,
        config: DispatcherConfig | None = None,
        owner: str | None = None,
    ) -> None:
        self._pool = pool
        self._submit = submit
        self._listen_url = listen_url
        self.config = config or DispatcherConfig()
        self.owner = owner or f"dispatcher-{uuid.uuid4()}"
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self.claimed_total = 0
        self.handoff_failures = 0
        self.recovered_on_start = 0
        self.last_loop_at = 0.0

    async def start(self) -> None:
        recovered = await self._pool.fetch("SELECT * FROM app_requeue_jobs($1, false)", self.owner)
        self.recovered_on_start = len(recovered)
        if recovered:
            log.warning("re-queued %d job(s) left running by an earlier dispatcher", len(recovered))
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="dispatcher-listen"),
            asyncio.create_task(self._run_forever(), name="dispatcher-loop"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    def status(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "inflight": len(self._inflight),
            "claimed_total": self.claimed_total,
            "handoff_failures": self.handoff_failures,
            "recovered_on_start": self.recovered_on_start,
            "listening": self._listener is not None and not self._listener.is_closed(),
            "loop_age_s": round(time.monotonic() - self.last_loop_at, 3)
            if self.last_loop_at
            else None,
        }

    def healthy(self) -> bool:
        alive = all(not t.done() for t in self._tasks) and bool(self._tasks)
        fresh = time.monotonic() - self.last_loop_at < max(30.0, 5 * self.config.poll_s)
        return alive and fresh

    # -- loops ------------------------------------------------------------------------------
    async def _listen_forever(self) -> None:
        while True:
            try:
                self._listener = await asyncpg.connect(self._listen_url)
                await self._listener.add_listener(JOBS_CHANNEL, lambda *_: self._wake.set())
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

    async def _run_forever(self) -> None:
        last_reap = 0.0
        while True:
            self.last_loop_at = time.monotonic()
            try:
                if time.monotonic() - last_reap >= self.config.reap_every_s:
                    last_reap = time.monotonic()
                    await self._reap()
                claimed = await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be restarting
                log.error("dispatch cycle failed: %s", exc)
                claimed = 0
                await asyncio.sleep(self.config.poll_s)
            room = self.config.max_inflight - len(self._inflight)
            if claimed and room > 0:
                continue  # there may be more waiting
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_s)

    async def _reap(self) -> None:
        rows = await self._pool.fetch("SELECT * FROM app_requeue_jobs($1, true)", self.owner)
        for row in rows:
            log.warning(
                "lease expired for enhancement %s (tenant %s) -> %s",
                row["id"],
                row["tenant_id"],
                row["status"],
            )

    async def _claim(self) -> int:
        room = self.config.max_inflight - len(self._inflight)
        if room <= 0:
            return 0
        rows = await self._pool.fetch(
            "SELECT * FROM app_claim_jobs($1, $2, $3, $4)",
            self.owner,
            min(room, self.config.batch),
            self.config.per_tenant_cap,
            self.config.lease_s,
        )
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
        self.claimed_total += len(rows)
        return len(rows)

    async def _handle(self, job: ClaimedJob) -> None:
        try:
            await self._submit(job)
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
            self._inflight.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._wake.set()

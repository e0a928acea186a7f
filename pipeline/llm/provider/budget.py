"""One provider key's limits, shared fairly by every tenant and every Synthesizer replica.

An MSP usually runs every tenant on one OpenRouter key, and a key has one rate limit and one
credit balance. Each LLM attempt therefore asks this budget for a **grant** first and gives it
back when the provider has answered:

- **Limits** (``ProviderLimits``, all optional): requests per minute, tokens per minute and
  calls in progress at once. Requests and tokens are token buckets that refill slightly below
  the configured rate and hold at most one second's worth, so no 60-second window ever sees
  more than the limit (a provider counting a sliding minute never has cause for a 429). Tokens
  are estimated before the call (prompt characters / 4 plus ``max_tokens``, as OpenAI's own
  limiter counts a request) and corrected with the usage the answer reports.
- **Fair between the tenants that have work**, the dispatcher's rule: whenever capacity frees,
  the next grant goes to the waiting tenant with the fewest calls in progress per unit of
  ``dispatch_weight`` (ties: the one served longest ago). A tenant alone may use all of it; a
  flooding tenant cannot keep a quiet tenant's call waiting behind its queue.
- **A 429 slows everyone**: the provider's ``Retry-After`` (or 1 s, doubling while 429s keep
  coming) pauses every grant, since every tenant shares the key that earned it. A 429 is the
  budget's business, not an outage: it never counts toward the circuit breaker.
- **A 402 stops everyone at once**: once a call meets "insufficient credits" (or the credit
  poller reads nothing left), every waiting and new call is refused with the reason right away
  (``ProviderPaused``; the notes are context-only and say so) instead of each job finding out
  by itself; one probe call is let through every ``credits_recheck_s``, and the poller's next
  reading of a positive balance lifts it at once.
- A grant never given back (its caller died) is taken back after ``grant_timeout_s``.

Ray-free and single-threaded (one event loop): the Ray actor ``ProviderBudgetActor``
(``actors/rate_limiter.py``) holds the one instance every replica shares; tests and a single
process use it directly. What the LLM client sees of it is :mod:`pipeline.llm.provider.gate`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from core.settings import Settings
from pipeline.llm.provider.gate import Grant, ProviderBusy, ProviderPaused

log = logging.getLogger(__name__)

ProviderState = Literal["ok", "slowed", "paused"]
# Numeric values for the ai_agents_llm_provider_state gauge (see metric_catalogue).
STATE_VALUES: dict[ProviderState, int] = {"ok": 0, "slowed": 1, "paused": 2}
# Below the configured rate, so clock drift between us and the provider never tips a minute over.
RATE_MARGIN = 0.98


@dataclass(frozen=True)
class ProviderLimits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrency: int | None = None
    grant_timeout_s: float = 180.0
    credits_recheck_s: float = 60.0
    first_pause_s: float = 1.0  # a 429 without Retry-After; doubles while they continue
    max_pause_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderLimits:
        """``AI_AGENTS_LLM_PROVIDER_*``; a grant is taken back after the longest call can last
        (every attempt's timeout), and after a 402 one call retries every credit poll."""
        return cls(
            requests_per_minute=settings.llm_provider_rpm,
            tokens_per_minute=settings.llm_provider_tpm,
            concurrency=settings.llm_provider_concurrency,
            grant_timeout_s=settings.llm_timeout_s * 2 + 30,
            credits_recheck_s=settings.llm_credit_poll_s or 60.0,
        )


@dataclass
class _Bucket:
    rate: float  # per second
    capacity: float
    level: float
    updated: float

    @classmethod
    def per_minute(cls, limit: int, now: float) -> _Bucket:
        capacity = max(1.0, limit / 60.0)
        return cls(limit / 60.0 * RATE_MARGIN, capacity, capacity, now)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_s(self, now: float, need: float) -> float:
        self.refill(now)
        return 0.0 if self.level >= need else (need - self.level) / self.rate


@dataclass
class _Waiter:
    tenant_id: str
    tokens: int
    future: asyncio.Future[Grant]
    since: float


@dataclass
class _Grant:
    tenant_id: str
    tokens: int
    at: float
    probe: bool = False


@dataclass
class _Counters:
    granted: int = 0
    rate_limited: int = 0
    busy: int = 0
    refused_paused: int = 0
    expired: int = 0
    waited_s: float = 0.0
    by_tenant: dict[str, int] = field(default_factory=dict)


class ProviderBudget:
    def __init__(
        self, limits: ProviderLimits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or ProviderLimits()
        self._clock = clock
        now = clock()
        rpm, tpm = self.limits.requests_per_minute, self.limits.tokens_per_minute
        self._requests = _Bucket.per_minute(rpm, now) if rpm else None
        self._tokens = _Bucket.per_minute(tpm, now) if tpm else None
        self._waiting: dict[str, deque[_Waiter]] = {}
        self._weights: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._served: dict[str, int] = {}  # tenant -> sequence number of its last grant
        self._grants: dict[int, _Grant] = {}
        self._next_id = 1
        self._paused_until = 0.0
        self._pause_s = self.limits.first_pause_s
        self._credits: str | None = None  # why every call is refused, while it is
        self._probe_at = 0.0  # when a call may next try the provider despite _credits
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.counters = _Counters()

    # -- the call protocol -------------------------------------------------------------------

    async def acquire(
        self, tenant_id: str, *, tokens: int = 0, weight: int = 1, timeout_s: float
    ) -> Grant:
        """Wait for a grant (fairly among tenants); :class:`ProviderPaused` at once while the
        credit is gone, :class:`ProviderBusy` when none came within ``timeout_s``."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(tenant_id, max(0, tokens), loop.create_future(), self._clock())
        self._weights[tenant_id] = max(1, weight)
        self._waiting.setdefault(tenant_id, deque()).append(waiter)
        self._pump()
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                return await waiter.future
        except TimeoutError:
            self._give_back(waiter)
            self.counters.busy += 1
            raise ProviderBusy(
                f"no provider capacity within {timeout_s:.0f}s "
                f"({self.waiting} call(s) waiting, {self.in_flight} in progress)"
            ) from None
        except asyncio.CancelledError:
            self._give_back(waiter)
            raise

    async def release(
        self,
        grant_id: int,
        *,
        outcome: str,
        tokens_used: int | None = None,
        retry_after_s: float | None = None,
        detail: str | None = None,
    ) -> None:
        """The provider answered (``outcome`` as the client's metrics name it; ``no_credits``
        for a 402, ``unused`` when no request was sent)."""
        self.release_now(
            grant_id,
            outcome=outcome,
            tokens_used=tokens_used,
            retry_after_s=retry_after_s,
            detail=detail,
        )

    def release_now(
        self,
        grant_id: int,
        *,
        outcome: str,
        tokens_used: int | None = None,
        retry_after_s: float | None = None,
        detail: str | None = None,
    ) -> None:
        """:meth:`release` for synchronous callers (the same event loop)."""
        self._release(grant_id, outcome, tokens_used, retry_after_s, detail)
        self._pump()

    def _release(
        self,
        grant_id: int,
        outcome: str,
        tokens_used: int | None,
        retry_after_s: float | None,
        detail: str | None,
    ) -> None:
        grant = self._grants.pop(grant_id, None)
        now = self._clock()
        if grant is not None:
            self._in_flight[grant.tenant_id] = max(0, self._in_flight[grant.tenant_id] - 1)
            if outcome == "unused":  # nothing was sent: the request and its tokens come back
                self._refund(now, 1.0, grant.tokens)
            elif tokens_used is not None and self._tokens is not None:
                self._refund(now, 0.0, grant.tokens - tokens_used)
        if outcome == "rate_limited":
            self.counters.rate_limited += 1
            pause = retry_after_s if retry_after_s is not None else self._pause_s
            pause = min(max(0.0, pause), self.limits.max_pause_s)
            self._pause_s = min(self.limits.max_pause_s, self._pause_s * 2)
            if now + pause > self._paused_until:
                self._paused_until = now + pause
                log.warning("LLM provider answered 429: every call waits %.1fs", pause)
        elif outcome == "no_credits":
            self._exhausted(detail or "the provider says the credit is used up", now)
        elif outcome == "ok":
            self._pause_s = self.limits.first_pause_s
            if grant is not None and grant.probe and self._credits is not None:
                log.warning("LLM provider credit available again; LLM notes resume")
                self._credits = None

    # -- credit ------------------------------------------------------------------------------

    def credits_exhausted(self, reason: str) -> None:
        """Refuse every call now (waiting ones included) until the credit is back."""
        self._exhausted(reason, self._clock())
        self._pump()

    def _exhausted(self, reason: str, now: float) -> None:
        if self._credits is None:
            log.error("LLM provider credit exhausted, every note is context-only: %s", reason)
        self._credits = reason
        self._probe_at = now + self.limits.credits_recheck_s

    def credits_restored(self) -> None:
        if self._credits is not None:
            log.warning("LLM provider credit available again; LLM notes resume")
        self._credits = None
        self._pump()

    def note_credit(self, remaining_usd: float | None) -> None:
        """A reading of the key's remaining credit (None: the key has no limit)."""
        if remaining_usd is not None and remaining_usd <= 0:
            self.credits_exhausted("the key's remaining credit is 0 (read from the provider)")
        elif self._credits is not None:
            self.credits_restored()

    # -- observation -------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return len(self._grants)

    @property
    def waiting(self) -> int:
        return sum(
            1 for queue in self._waiting.values() for w in queue if not w.future.done()
        )  # fmt: skip

    def state(self) -> ProviderState:
        if self._credits is not None:
            return "paused"
        return "slowed" if self._clock() < self._paused_until else "ok"

    def snapshot(self) -> dict[str, Any]:
        """For tests, logs and ``ai-agents health``-style views."""
        now = self._clock()
        return {
            "state": self.state(),
            "reason": self._credits,
            "paused_for_s": max(0.0, self._paused_until - now),
            "in_flight": {t: n for t, n in self._in_flight.items() if n},
            "waiting": {
                t: sum(1 for w in q if not w.future.done())
                for t, q in self._waiting.items()
                if any(not w.future.done() for w in q)
            },
            "granted": self.counters.granted,
            "granted_by_tenant": dict(self.counters.by_tenant),
            "rate_limited": self.counters.rate_limited,
            "busy": self.counters.busy,
            "refused_paused": self.counters.refused_paused,
            "expired": self.counters.expired,
        }

    # -- internals ---------------------------------------------------------------------------

    def _give_back(self, waiter: _Waiter) -> None:
        """A waiter that stopped waiting: out of its queue, and a grant it got after all (the
        timeout and the grant crossed) is returned unused."""
        queue = self._waiting.get(waiter.tenant_id)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
        future = waiter.future
        if not future.done():
            future.cancel()
        elif not future.cancelled() and future.exception() is None:
            self.release_now(future.result().id, outcome="unused")

    def _refund(self, now: float, requests: float, tokens: int) -> None:
        if self._requests is not None and requests:
            self._requests.refill(now)
            self._requests.level = min(self._requests.capacity, self._requests.level + requests)
        if self._tokens is not None and tokens:
            self._tokens.refill(now)
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + tokens)

    def _next_tenant(self) -> str | None:
        best: tuple[float, int] | None = None
        chosen = None
        for tenant, queue in self._waiting.items():
            while queue and queue[0].future.done():
                queue.popleft()
            if not queue:
                continue
            key = (self._in_flight.get(tenant, 0) / self._weights.get(tenant, 1),
                   self._served.get(tenant, 0))  # fmt: skip
            if best is None or key < best:
                best, chosen = key, tenant
        return chosen

    def _grant(self, waiter: _Waiter, now: float, *, probe: bool = False) -> None:
        grant_id = self._next_id
        self._next_id += 1
        tenant = waiter.tenant_id
        self._grants[grant_id] = _Grant(tenant, waiter.tokens, now, probe)
        self._in_flight[tenant] = self._in_flight.get(tenant, 0) + 1
        self._served[tenant] = grant_id
        self.counters.granted += 1
        self.counters.by_tenant[tenant] = self.counters.by_tenant.get(tenant, 0) + 1
        self.counters.waited_s += now - waiter.since
        waiter.future.set_result(Grant(grant_id, now - waiter.since))

    def _expire(self, now: float) -> float | None:
        """Take back grants held past the timeout; when the next one would expire."""
        limit = self.limits.grant_timeout_s
        earliest = None
        for grant_id, grant in list(self._grants.items()):
            if now - grant.at >= limit:
                log.warning("LLM provider grant of %s never returned; taken back", grant.tenant_id)
                self.counters.expired += 1
                self._release(grant_id, "expired", None, None, None)
            elif earliest is None or grant.at + limit < earliest:
                earliest = grant.at + limit
        return earliest

    def _pump(self) -> None:
        """Grant what the limits allow now; wake again when more will be allowed."""
        now = self._clock()
        next_expiry = self._expire(now)
        if self._credits is not None:
            self._refuse_all(now)
            return
        limits = self.limits
        while (tenant := self._next_tenant()) is not None:
            if limits.concurrency is not None and len(self._grants) >= limits.concurrency:
                if next_expiry is not None:
                    self._wake_at(next_expiry)
                return
            wait = self._paused_until - now
            waiter = self._waiting[tenant][0]
            if self._requests is not None:
                wait = max(wait, self._requests.wait_s(now, 1.0))
            if self._tokens is not None:
                wait = max(wait, self._tokens.wait_s(now, 0.0))
            if wait > 0:
                self._wake_at(now + wait)
                return
            self._waiting[tenant].popleft()
            if self._requests is not None:
                self._requests.level -= 1.0
            if self._tokens is not None:
                self._tokens.level -= waiter.tokens
            self._grant(waiter, now)

    def _refuse_all(self, now: float) -> None:
        """Credit gone: every waiter hears so now; one probe may go once ``_probe_at`` passed."""
        for queue in self._waiting.values():
            while queue:
                waiter = queue.popleft()
                if waiter.future.done():
                    continue
                probing = any(g.probe for g in self._grants.values())
                if now >= self._probe_at and not probing:
                    self._probe_at = now + self.limits.credits_recheck_s
                    self._grant(waiter, now, probe=True)
                    continue
                self.counters.refused_paused += 1
                waiter.future.set_exception(ProviderPaused(self._credits or "credit exhausted"))

    def _wake_at(self, when: float) -> None:
        if self._timer is not None and not self._timer.cancelled() and self._timer_at <= when:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the next call pumps
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_later(max(0.0, when - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

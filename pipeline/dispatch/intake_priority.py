"""Intake first during a storm: while webhooks arrive faster than a set rate, the Dispatcher
keeps only a trickle of the storming tenants' jobs in flight, so the CPU goes to acknowledging
SDP; quiet tenants' tickets keep flowing.

Why: every accepted webhook is already a durable job, so processing it a few seconds later loses
nothing, while a slow acknowledgement makes SDP time out and retry (more load). On a node that
runs intake and pipeline side by side (one machine, a small KubeRay head), a busy pipeline
takes the CPU intake needs and acknowledgements slow down many times over.

How the rate is known without any extra work per webhook: the ingress already sends
``NOTIFY ai_agents_jobs, '<tenant>'`` when it commits a job, and the Dispatcher listens; each
such notification is one arrival of that tenant (re-queues say ``'retry'`` and batch
re-enhancement sends none, so neither counts).

- **Storm**: at least ``rate_per_s`` arrivals per second over the last ``window_s``, all
  tenants together. Intake has priority from then until ``hold_s`` after it falls below.
- **Storming tenant**: one that sent at least ``tenant_rate_per_s`` in the last second while
  there is a storm (the flood's source; the default is a tenth of the storm rate). Its jobs,
  and any backlog of tenants that are not sending now, share ``inflight`` slots.
- **Quiet tenant**: sent something within ``hold_s`` but below its storm rate (tenant B sending
  a ticket a second while A floods). Claimed at the normal cap: its few tickets cost little
  CPU, and fairness says A's flood must not delay them.

The pools' autoscaling policy holds its replica count meanwhile (``BacklogReport
.intake_priority``): new replicas would take the CPU intake needs.

Settings: ``AI_AGENTS_INTAKE_PRIORITY_RATE`` (webhooks/s, 0 turns it off — for clusters whose
ingress has nodes of its own), ``AI_AGENTS_INTAKE_PRIORITY_INFLIGHT`` (the trickle, >= 1 so a
storm that never ends still drains), ``AI_AGENTS_INTAKE_PRIORITY_HOLD_S``.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

RETRY_PAYLOAD = "retry"  # what a re-queue notifies with (db.repositories.enhancements)
TENANT_WINDOW_S = 1.0  # a tenant's own rate is judged over one second
MAX_QUIET_TENANTS = 16  # claimed one by one per dispatch cycle: bound the round trips


@dataclass
class IntakePriority:
    rate_per_s: float  # 0: off
    inflight: int = 2
    hold_s: float = 3.0
    # short, so a storm is noticed after a few arrivals (rate x window of them are claimed at
    # the normal cap first); a burst that briefly crosses the rate costs only hold_s of pacing
    window_s: float = 0.25
    tenant_rate_per_s: float | None = None  # None: a tenth of rate_per_s, at least 2
    clock: Callable[[], float] = time.monotonic
    activations: int = 0  # storms seen (status and tests)
    _recent: deque[float] = field(default_factory=deque, repr=False)
    _by_tenant: deque[tuple[float, str]] = field(default_factory=deque, repr=False)
    _tenant_counts: Counter[str] = field(default_factory=Counter, repr=False)
    _active_until: float = float("-inf")
    _storming_until: dict[str, float] = field(default_factory=dict, repr=False)
    _seen_until: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    @property
    def tenant_storm_rate(self) -> float:
        if self.tenant_rate_per_s is not None:
            return self.tenant_rate_per_s
        return max(2.0, self.rate_per_s / 10)

    def notified(self, payload: str) -> None:
        """One ``NOTIFY ai_agents_jobs`` heard; only new jobs count as arrivals."""
        if payload != RETRY_PAYLOAD:
            self.arrived(payload)

    def arrived(self, tenant: str) -> None:
        if not self.enabled:
            return
        now = self.clock()
        self._recent.append(now)
        self._by_tenant.append((now, tenant))
        self._tenant_counts[tenant] += 1
        self._trim(now)
        self._seen_until[tenant] = now + self.hold_s
        if len(self._recent) / self.window_s >= self.rate_per_s:
            if now >= self._active_until:
                self.activations += 1
            self._active_until = now + self.hold_s
        if self._tenant_counts[tenant] / TENANT_WINDOW_S >= self.tenant_storm_rate and (
            now < self._active_until
        ):
            self._storming_until[tenant] = now + self.hold_s

    def rate(self) -> float:
        """Arrivals per second over the last ``window_s``, all tenants."""
        self._trim(self.clock())
        return len(self._recent) / self.window_s

    def active(self) -> bool:
        return self.enabled and self.clock() < self._active_until

    def storming(self, tenant: str) -> bool:
        return self.active() and self.clock() < self._storming_until.get(tenant, float("-inf"))

    def quiet_tenants(self) -> list[str]:
        """Tenants heard from within ``hold_s`` that are not storming, most recent first."""
        if not self.active():
            return []
        now = self.clock()
        self._seen_until = {t: until for t, until in self._seen_until.items() if until > now}
        self._storming_until = {t: u for t, u in self._storming_until.items() if u > now}
        recent = sorted(self._seen_until.items(), key=lambda item: -item[1])
        quiet = [t for t, _ in recent if t not in self._storming_until]
        return quiet[:MAX_QUIET_TENANTS]

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self._recent and self._recent[0] <= horizon:
            self._recent.popleft()
        horizon = now - TENANT_WINDOW_S
        while self._by_tenant and self._by_tenant[0][0] <= horizon:
            _, tenant = self._by_tenant.popleft()
            self._tenant_counts[tenant] -= 1
            if not self._tenant_counts[tenant]:
                del self._tenant_counts[tenant]

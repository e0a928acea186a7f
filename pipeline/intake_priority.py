"""Intake first during a storm: while webhooks arrive faster than a set rate, the Dispatcher
keeps only a trickle of jobs in flight, so the CPU goes to acknowledging SDP.

Why: every accepted webhook is already a durable job, so processing it a few seconds later loses
nothing, while a slow acknowledgement makes SDP time out and retry (more load). On a node that
runs intake and pipeline side by side (one machine, a small KubeRay head), a busy pipeline took
intake from 513 to 89 webhooks/s and its p99 from 151 ms to 1.6 s (benchmarks/README.md,
"Intake against its floor").

How the rate is known without any extra work per webhook: the ingress already sends
``NOTIFY ai_agents_jobs, '<tenant>'`` when it commits a job, and the Dispatcher listens; each
such notification is one arrival (re-queues say ``'retry'`` and batch re-enhancement sends none,
so neither counts). While the rate over the last ``window_s`` is at or above ``rate_per_s``, and
for ``hold_s`` after it falls below, the in-flight cap is ``min(normal cap, inflight)``. The
pools' autoscaling policy holds its replica count meanwhile (``BacklogReport.intake_priority``):
new replicas would take the CPU intake needs, and the Dispatcher is not handing out more work.

Settings: ``AI_AGENTS_INTAKE_PRIORITY_RATE`` (webhooks/s, 0 turns it off — for clusters whose
ingress has nodes of its own), ``AI_AGENTS_INTAKE_PRIORITY_INFLIGHT`` (the trickle, >= 1 so a
storm that never ends still drains), ``AI_AGENTS_INTAKE_PRIORITY_HOLD_S``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

RETRY_PAYLOAD = "retry"  # what a re-queue notifies with (db.repositories.enhancements)


@dataclass
class IntakePriority:
    rate_per_s: float  # 0: off
    inflight: int = 2
    hold_s: float = 3.0
    # short, so a storm is noticed after a few arrivals (rate x window of them are claimed at
    # the normal cap first); a burst that briefly crosses the rate costs only hold_s of pacing
    window_s: float = 0.25
    clock: Callable[[], float] = time.monotonic
    activations: int = 0  # storms seen (status and tests)
    _arrivals: deque[float] = field(default_factory=deque, repr=False)
    _active_until: float = float("-inf")

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def notified(self, payload: str) -> None:
        """One ``NOTIFY ai_agents_jobs`` heard; only new jobs count as arrivals."""
        if payload != RETRY_PAYLOAD:
            self.arrived()

    def arrived(self, n: int = 1) -> None:
        if not self.enabled:
            return
        now = self.clock()
        self._arrivals.extend([now] * n)
        self._trim(now)
        if self.rate(now) >= self.rate_per_s:
            if now >= self._active_until:
                self.activations += 1
            self._active_until = now + self.hold_s

    def rate(self, now: float | None = None) -> float:
        """Arrivals per second over the last ``window_s``."""
        self._trim(self.clock() if now is None else now)
        return len(self._arrivals) / self.window_s

    def active(self) -> bool:
        return self.enabled and self.clock() < self._active_until

    def limit(self, normal: int) -> int:
        """The in-flight cap to use now, given the cap capacity allows."""
        return min(normal, max(1, self.inflight)) if self.active() else normal

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self._arrivals and self._arrivals[0] <= horizon:
            self._arrivals.popleft()

"""How many jobs the Dispatcher admits into the pipeline: as many as it can work on without
queueing inside, found by measuring that queueing (additive-increase / multiplicative-decrease).

Why: the capacity cap (running Enhancer replicas x their target, ``pipeline.scaling``) counts
replicas, not what they can really do. Where replicas share CPUs (one machine, or replicas that
reserve little CPU on a KubeRay node) that cap admitted 256 jobs into a pipeline that could
work on ~110 at once; the rest waited in Serve's and the database pool's FIFO queues, so a
quiet tenant's ticket, claimed within a second thanks to fair share, still waited behind a
flooding tenant's 250 jobs: p95 26 s instead of 2.5 s (benchmarks/README.md, "Fairness").
Fair share only works if admission stops where queueing starts.

The signal is each completed job's *queueing*: the seconds from hand-off to completion minus
the seconds its stages were timed (context, synthesis, write-back). LLM and SDP latency are
inside the stages, so a slow provider does not shrink the limit — while it is waited on, more
jobs in flight are exactly what is needed. Once a second, with enough completions seen:

- p90 queueing above ``target_s``: the limit shrinks to ``decrease`` of itself;
- p90 below half of it and the limit nearly used: it grows by ``increase`` of itself (at
  least one job);

always within [``floor``, the capacity cap]. It starts at ``initial`` and grows from there, so a
flood arriving at an idle system is not admitted all at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class AdmissionLimit:
    target_s: float = 0.5  # p90 queueing inside the pipeline the limit aims below
    initial: int = 32
    floor: int = 4
    decrease: float = 0.8
    increase: float = 0.2
    min_samples: int = 5
    period_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    limit: float = field(init=False)
    adjustments: int = 0
    last_p90_s: float | None = None
    _samples: list[float] = field(default_factory=list, repr=False)
    _adjusted_at: float = field(default=float("-inf"), repr=False)

    def __post_init__(self) -> None:
        self.limit = float(max(self.floor, self.initial))

    @property
    def enabled(self) -> bool:
        return self.target_s > 0

    def current(self, ceiling: int) -> int:
        """The in-flight limit to use now, never above the capacity cap."""
        if not self.enabled:
            return ceiling
        return max(1, min(ceiling, math.floor(self.limit)))

    def observe(self, queued_s: float, inflight: int, ceiling: int) -> None:
        """One completed job's queueing; adjusts at most once per ``period_s``."""
        if not self.enabled:
            return
        self._samples.append(max(0.0, queued_s))
        now = self.clock()
        if len(self._samples) < self.min_samples or now - self._adjusted_at < self.period_s:
            return
        samples = sorted(self._samples)
        p90 = samples[min(len(samples) - 1, int(0.9 * len(samples)))]
        self._samples.clear()
        self._adjusted_at = now
        self.last_p90_s = p90
        if p90 > self.target_s:
            self.limit *= self.decrease
        elif p90 < self.target_s / 2 and inflight >= 0.8 * self.current(ceiling):
            self.limit += max(1.0, self.limit * self.increase)
        else:
            return
        self.limit = min(float(max(ceiling, self.floor)), max(float(self.floor), self.limit))
        self.adjustments += 1

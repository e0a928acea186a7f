"""Admission: how many jobs the Dispatcher lets into the pipeline at once, following what the
pipeline completes, so that jobs wait in the durable queue (where the claim planner's fair share
applies) rather than in Serve's first-come queues.

Why: on a CPU-bound cluster more jobs in flight add no throughput, only queueing inside the
replicas, where a quiet tenant's ticket waits behind a flood. The right number in flight is what
Little's law gives for the throughput the pipeline actually sustains: ``L = λ × W₀``, with ``λ``
the completions per second and ``W₀`` the time a job takes through the pipeline when it does not
queue.

How (``AdaptiveLimit``, Ray-free, driven by a clock and the completions the Dispatcher sees):

- Every ``window_s`` with at least ``min_samples`` completions it measures ``λ`` and the window's
  median hand-off time ``W`` (claim → the Enhancer's answer). The reference ``W₀`` is the lowest
  window p10 of the last ``reference_windows`` windows: what a job costs without a queue, kept
  long enough that a saturated stretch does not turn its own queueing into the reference.
- ``W > tolerance × W₀``: jobs queue inside the pipeline. The limit becomes
  ``ceil(λ × W₀ × tolerance)`` (Little's law at the tolerated latency), at most halving per
  window.
- Otherwise, when the limit was reached in the window (there is more work than it admits), it
  grows by ``growth``: the pipeline has room, so probe for more throughput. A growth after which
  ``λ`` did not rise by ``min_gain`` is undone and growth pauses for ``pause_windows``: more in
  flight bought nothing, the pipeline is at its knee (the signal needs no latency at all).
- A cut that cost throughput (``λ`` fell below ``keep`` of what it was) was not queueing but a
  slow dependency whose latency varies (an LLM): the limit goes back to where it was, and the
  reference is raised to the latency seen (``W / tolerance``) until the history turns over.
  So an I/O-bound pipeline is never throttled into a spiral by its own latency spread.
- Bounds: never above ``upper`` (``AI_AGENTS_DISPATCH_MAX_INFLIGHT``), never below ``floor``
  (``AI_AGENTS_DISPATCH_MIN_INFLIGHT``), so a quiet tenant always finds a slot.

The Dispatcher uses ``min(this limit, running Enhancer replicas × their target)``
(``pipeline.dispatch.scaling.inflight_cap``); it records the limit as
``ai_agents_dispatch_inflight_limit`` and shows the state in its ``status()``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AdmissionConfig:
    floor: int = 8
    upper: int = 256
    initial: int = 64  # where the limit starts (within floor..upper)
    window_s: float = 5.0
    min_samples: int = 10
    tolerance: float = 1.5  # W / W0 above which jobs count as queueing
    growth: float = 1.25
    keep: float = 0.85  # a cut that leaves less than this of the throughput is undone
    reference_windows: int = 60  # windows whose p10 hand-off times give W0
    min_gain: float = 0.05  # a growth must add this much throughput to stay
    pause_windows: int = 6  # windows without growth after one that added nothing

    def bounded(self, value: float) -> int:
        low = max(1, self.floor)
        return int(min(max(self.upper, low), max(low, math.ceil(value))))


@dataclass(frozen=True)
class _Change:
    kind: str  # "cut" or "grow"
    limit: int  # before the change
    throughput: float  # before the change


class AdaptiveLimit:
    """The in-flight limit that follows measured completions (see the module docstring)."""

    def __init__(
        self, config: AdmissionConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or AdmissionConfig()
        self._clock = clock
        self.limit = self.config.bounded(self.config.initial)
        self._p10s: deque[float] = deque(maxlen=max(1, self.config.reference_windows))
        self._window: list[float] = []
        self._window_start = clock()
        self._peak_inflight = 0
        self._change: _Change | None = None
        self._raised_ref: float | None = None
        self._raised_left = 0  # windows until the raised reference expires
        self._pause_left = 0  # windows without growth
        self.throughput = 0.0
        self.median_s: float | None = None
        self.reference_s: float | None = None
        self.decision = "start"

    def inflight(self, n: int) -> None:
        """The jobs in flight after a claim (the peak says whether the limit was reached)."""
        self._peak_inflight = max(self._peak_inflight, n)

    def completed(self, handoff_s: float) -> None:
        """One job back from the pipeline after ``handoff_s`` seconds (any outcome)."""
        if handoff_s < 0 or not math.isfinite(handoff_s):
            return
        self._window.append(handoff_s)

    def _reference(self, samples: list[float]) -> float:
        ordered = sorted(samples)
        self._p10s.append(ordered[int(0.1 * (len(ordered) - 1))])
        if self._raised_left > 0:
            self._raised_left -= 1
            if self._raised_left == 0:
                self._raised_ref = None
        return max(min(self._p10s), self._raised_ref or 0.0)

    @property
    def window_started(self) -> float:
        """When the current measurement window began (a new one every ``window_s``)."""
        return self._window_start

    def update(self) -> int:
        """Close the window when it is due and adjust the limit; returns the limit."""
        now = self._clock()
        elapsed = now - self._window_start
        if elapsed < self.config.window_s:
            return self.limit
        samples, peak = self._window, self._peak_inflight
        self._window, self._peak_inflight, self._window_start = [], 0, now
        if len(samples) < self.config.min_samples:
            self.decision = "hold: too few completions"
            return self.limit
        self.throughput = len(samples) / elapsed
        self.median_s = statistics.median(samples)
        self.reference_s = self._reference(samples)
        self._adjust(peak)
        return self.limit

    def _adjust(self, peak: int) -> None:
        cfg, change = self.config, self._change
        assert self.median_s is not None and self.reference_s is not None
        self._change = None
        self._pause_left = max(0, self._pause_left - 1)
        if change is not None and change.kind == "cut":
            if self.throughput < cfg.keep * change.throughput:
                # the cut cost throughput: the latency was the dependency's, not a queue
                self.limit = change.limit
                self._raised_ref = self.median_s / cfg.tolerance
                self._raised_left = cfg.reference_windows
                self.decision = "undo cut: throughput fell"
                return
        elif change is not None and self.throughput < (1 + cfg.min_gain) * change.throughput:
            self.limit = change.limit  # more in flight added nothing: the knee
            self._pause_left = cfg.pause_windows
            self.decision = "undo growth: no more throughput"
            return
        if self.median_s > cfg.tolerance * self.reference_s:
            target = max(self.throughput * self.reference_s * cfg.tolerance, self.limit / 2)
            new = cfg.bounded(target)
            if new < self.limit:
                self._change = _Change("cut", self.limit, self.throughput)
                self.limit = new
                self.decision = "cut: queueing"
            else:
                self.decision = "hold: queueing"
            return
        if peak >= self.limit and self._pause_left == 0 and self.limit < cfg.upper:
            self._change = _Change("grow", self.limit, self.throughput)
            self.limit = cfg.bounded(max(self.limit + 1, self.limit * cfg.growth))
            self.decision = "grow: limit reached, no queueing"
        else:
            self.decision = "hold"

    def status(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "decision": self.decision,
            "completions_per_s": round(self.throughput, 2),
            "handoff_median_s": None if self.median_s is None else round(self.median_s, 3),
            "handoff_reference_s": None if self.reference_s is None else round(self.reference_s, 3),
        }

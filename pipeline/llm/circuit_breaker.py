"""A small circuit breaker for calls to an external service (the LLM endpoint).

When the LLM is down, every enhancement would otherwise spend its whole retry budget and
deadline before falling back to a context-only note. The breaker remembers recent failures so
later calls fall back immediately, and lets a single probe through after a cool-down to find
out whether the service is back.

Plain Python and synchronous on purpose: it is used from one event loop per Synthesizer
replica (one breaker per replica per base URL), its methods never await, so no lock is needed,
and it is tested with an injectable clock instead of sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

log = logging.getLogger(__name__)

BreakerState = Literal["closed", "half_open", "open"]

# Numeric values for the ai_agents_circuit_breaker_state gauge (see metric_catalogue).
STATE_VALUES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitOpenError(Exception):
    """Raised by :meth:`CircuitBreaker.guard` when a call is skipped; carries the wait left."""

    def __init__(self, name: str, retry_in_s: float) -> None:
        super().__init__(f"circuit breaker '{name}' is open; next probe in {retry_in_s:.1f}s")
        self.retry_in_s = retry_in_s


class CircuitBreaker:
    """Closed → open after N consecutive failures; open → half-open after a cool-down.

    In half-open state at most ``half_open_max_calls`` probes are let through; the first
    success closes the breaker and any failure re-opens it for another full cool-down.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: Callable[[BreakerState, BreakerState], None] | None = None,
        name: str = "llm",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be >= 1")
        self.failure_threshold = failure_threshold
        self.recovery_timeout_s = recovery_timeout_s
        self.half_open_max_calls = half_open_max_calls
        self.name = name
        self._clock = clock
        self._on_state_change = on_state_change
        self._state: BreakerState = "closed"
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probes_in_flight = 0

    # -- observation -------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """Current state; an expired open period reads as half-open without a call needed."""
        if self._state == "open" and self._clock() - self._opened_at >= self.recovery_timeout_s:
            self._transition("half_open")
        return self._state

    @property
    def state_value(self) -> int:
        """0 closed, 1 half-open, 2 open — the value exported as a gauge."""
        return STATE_VALUES[self.state]

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def retry_in_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.recovery_timeout_s - (self._clock() - self._opened_at))

    # -- call protocol -----------------------------------------------------------------------

    def allow(self) -> bool:
        """Ask to make a call. True reserves a slot; the caller must then record the outcome."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and self._probes_in_flight < self.half_open_max_calls:
            self._probes_in_flight += 1
            return True
        return False

    def guard(self) -> None:
        """Like :meth:`allow` but raises :class:`CircuitOpenError` instead of returning False."""
        if not self.allow():
            raise CircuitOpenError(self.name, self.retry_in_s())

    def record_success(self) -> None:
        self._consecutive_failures = 0
        if self._state == "half_open":
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
        if self._state != "closed":
            self._transition("closed")

    def record_failure(self) -> None:
        self._consecutive_failures += 1
        if self._state == "half_open":
            self._probes_in_flight = max(0, self._probes_in_flight - 1)
            self._open()
        elif self._state == "closed" and self._consecutive_failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """Give back a slot without judging the service (e.g. the caller was cancelled)."""
        if self._state == "half_open":
            self._probes_in_flight = max(0, self._probes_in_flight - 1)

    def reset(self) -> None:
        self._consecutive_failures = 0
        self._probes_in_flight = 0
        if self._state != "closed":
            self._transition("closed")

    # -- internals ---------------------------------------------------------------------------

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probes_in_flight = 0
        self._transition("open")

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        if old == new:
            return
        self._state = new
        if new == "half_open":
            self._probes_in_flight = 0
        log.info("circuit breaker %s: %s -> %s", self.name, old, new)
        if self._on_state_change is not None:
            try:
                self._on_state_change(old, new)
            except Exception:  # a metrics callback must never break the call path
                log.exception("circuit breaker state-change callback failed")

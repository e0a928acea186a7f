"""Per-portal fault injection: latency, throttling, 5xx, failed envelopes and outages.

Each tenant's SDP fails independently in production (one MSP client's cloud portal throttles
while another's on-prem box is down), so faults live on the portal, not on the simulator. The
decision is split in two: `before_handler` runs before any effect (a throttled or failed call
must not create a note), `after_handler` can fail a call whose write already happened — the
ambiguous case a client must handle without posting the same note twice.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from .wire.envelopes import SdpHttpError

Outage = Literal["none", "503", "hang"]
THROTTLE_MESSAGE = "You have made too many requests continuously. Please try again after some time."


@dataclass
class FaultConfig:
    """What goes wrong on one portal. Counters (`*_next`) are consumed by matching calls."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit_per_minute: int | None = None
    rate_limit_retry_after_s: float | None = None
    http_429_next: int = 0
    http_429_probability: float = 0.0
    retry_after_s: float | None = None
    http_5xx_next: int = 0
    http_5xx_probability: float = 0.0
    http_5xx_status: int = 503
    fail_after_effect: bool = False
    failed_envelope_next: int = 0
    failed_envelope_probability: float = 0.0
    failed_envelope_message: str = "Unable to process the request at this time"
    outage: Outage = "none"
    hang_max_s: float = 300.0
    match: str | None = None

    def __post_init__(self) -> None:
        if self.outage not in ("none", "503", "hang"):
            raise ValueError(f"outage must be 'none', '503' or 'hang', not {self.outage!r}")
        if not 500 <= self.http_5xx_status <= 599:
            raise ValueError("http_5xx_status must be a 5xx status")
        for name in ("http_429_probability", "http_5xx_probability", "failed_envelope_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.match is not None:
            re.compile(self.match)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        """Build from JSON, optionally merging into `base`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        merged = {**(base.to_dict() if base else {}), **data}
        return cls(**merged)

    def applies_to(self, method: str, path: str) -> bool:
        return self.match is None or re.search(self.match, f"{method} {path}") is not None


@dataclass
class RateWindow:
    """Sliding one-minute window of accepted calls, like cloud SDP's per-account throttle."""

    stamps: deque[float] = field(default_factory=deque)

    def admit(self, now: float, limit: int) -> float | None:
        """Record the call and return None, or return seconds until a slot frees up."""
        while self.stamps and now - self.stamps[0] >= 60.0:
            self.stamps.popleft()
        if len(self.stamps) >= limit:
            return max(0.0, 60.0 - (now - self.stamps[0]))
        self.stamps.append(now)
        return None


@dataclass
class Decision:
    """What the app should do with one call, decided atomically under the state lock."""

    latency_s: float = 0.0
    hang: bool = False
    error: SdpHttpError | None = None
    fail_after: SdpHttpError | None = None


def _take(counter_name: str, prob_name: str, faults: FaultConfig, rng: random.Random) -> bool:
    remaining = getattr(faults, counter_name)
    if remaining > 0:
        setattr(faults, counter_name, remaining - 1)
        return True
    probability = getattr(faults, prob_name)
    return probability > 0 and rng.random() < probability


def _retry_after_header(seconds: float | None) -> dict[str, str]:
    return {} if seconds is None else {"Retry-After": str(max(0, math.ceil(seconds)))}


def server_error(status: int) -> SdpHttpError:
    """500 is SDP's own envelope (4004); 502-504 come from a proxy in front, as plain HTML."""
    if status == 500:
        return SdpHttpError(500, 4004, "Internal error")
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
    text = reason.get(status, "Server Error")
    return SdpHttpError(
        status, 0, text, plain_text=f"<html><body><h1>{status} {text}</h1></body></html>"
    )


def decide(
    faults: FaultConfig,
    window: RateWindow,
    rng: random.Random,
    *,
    method: str,
    path: str,
    now: float,
) -> Decision:
    """Pick the fate of one call. Must run under the state lock: it consumes counters."""
    decision = Decision()
    if faults.latency_ms or faults.latency_jitter_ms:
        jitter = rng.uniform(-faults.latency_jitter_ms, faults.latency_jitter_ms)
        decision.latency_s = max(0.0, faults.latency_ms + jitter) / 1000.0
    if faults.rate_limit_per_minute is not None:
        wait = window.admit(now, faults.rate_limit_per_minute)
        if wait is not None:
            seconds = faults.rate_limit_retry_after_s
            decision.error = SdpHttpError(
                429, 4015, THROTTLE_MESSAGE, headers=_retry_after_header(seconds)
            )
            return decision
    if not faults.applies_to(method, path):
        return decision
    if faults.outage == "503":
        decision.error = server_error(503)
        return decision
    decision.hang = faults.outage == "hang"
    if _take("http_429_next", "http_429_probability", faults, rng):
        decision.error = SdpHttpError(
            429, 4015, THROTTLE_MESSAGE, headers=_retry_after_header(faults.retry_after_s)
        )
    elif faults.fail_after_effect and method != "GET":
        if _take("http_5xx_next", "http_5xx_probability", faults, rng):
            decision.fail_after = server_error(faults.http_5xx_status)
    elif _take("http_5xx_next", "http_5xx_probability", faults, rng):
        decision.error = server_error(faults.http_5xx_status)
    undecided = decision.error is None and decision.fail_after is None
    if undecided and _take("failed_envelope_next", "failed_envelope_probability", faults, rng):
        decision.error = SdpHttpError(200, 4000, faults.failed_envelope_message, as_list=True)
    return decision

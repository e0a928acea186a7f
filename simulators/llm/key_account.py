"""What one API key may do at the provider: its rate limit and its credit, as OpenRouter applies
them, so the service's shared provider budget can be measured against a key that says no.

- **Rate limit** (per key): at most ``requests_per_minute`` requests admitted in any sliding
  60 s window and at most ``concurrency`` requests in progress at once. Beyond either the answer
  is 429 with ``Retry-After`` (whole seconds: until the oldest request of the window leaves it,
  or 1 s for concurrency), the way OpenRouter and the providers behind it answer a key over its
  rate. Refused requests are not counted against the window.
- **Credit**: ``credits_usd`` is the account's balance, ``key_limit_usd`` the key's own spending
  limit. Every answer that carries ``usage.cost`` spends it; once either is used up the answer
  is 402 with ``metadata.limit_source`` ``openrouter_credits`` or ``openrouter_key_limit`` and
  no ``Retry-After`` (asking again cannot help until someone tops up).
- ``GET /api/v1/key`` (OpenRouter's "current API key" endpoint) reports the key's
  ``limit`` / ``limit_remaining`` / ``usage`` / ``usage_daily`` ...: ``limit`` is the key limit
  when one is set, else the account balance, so a client can read the credit it has left.

Everything is per presented key. Thread-safe: the server thread admits requests while a test
thread changes the limits.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class KeyLimits:
    """``None`` everywhere: no limit (the default simulator)."""

    requests_per_minute: int | None = None
    concurrency: int | None = None
    credits_usd: float | None = None  # the account balance; 402 openrouter_credits at 0
    key_limit_usd: float | None = None  # the key's own limit; 402 openrouter_key_limit at 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused before the model runs: the HTTP status, message, headers."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    limit_source: str | None = None


@dataclass
class _Key:
    window: deque[float] = field(default_factory=deque)  # admission times, last 60 s
    in_flight: int = 0
    usage_usd: float = 0.0
    requests: int = 0
    rate_limited: int = 0
    payment_required: int = 0


WINDOW_S = 60.0


class KeyAccounts:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.limits = KeyLimits()
        self._keys: dict[str, _Key] = {}

    def configure(self, limits: KeyLimits) -> None:
        with self._lock:
            self.limits = limits

    def reset(self) -> None:
        """No limits, nothing spent (in-flight counts stay: those requests are still running)."""
        with self._lock:
            self.limits = KeyLimits()
            for key in self._keys.values():
                key.window.clear()
                key.usage_usd = 0.0
                key.requests = key.rate_limited = key.payment_required = 0

    def admit(self, api_key: str) -> Refusal | None:
        """None: the request may run (call :meth:`finish` when it has answered)."""
        with self._lock:
            key = self._keys.setdefault(api_key, _Key())
            limits = self.limits
            now = self._clock()
            while key.window and now - key.window[0] >= WINDOW_S:
                key.window.popleft()
            if limits.key_limit_usd is not None and key.usage_usd >= limits.key_limit_usd:
                key.payment_required += 1
                return Refusal(
                    402, "Key limit exceeded: this key has used its spending limit",
                    limit_source="openrouter_key_limit",
                )  # fmt: skip
            if limits.credits_usd is not None and key.usage_usd >= limits.credits_usd:
                key.payment_required += 1
                return Refusal(
                    402, "Insufficient credits: add more using https://openrouter.ai/credits",
                    limit_source="openrouter_credits",
                )  # fmt: skip
            if limits.concurrency is not None and key.in_flight >= limits.concurrency:
                key.rate_limited += 1
                return Refusal(
                    429, "Rate limit exceeded: too many concurrent requests for this key",
                    headers={"Retry-After": "1"},
                )  # fmt: skip
            rpm = limits.requests_per_minute
            if rpm is not None and len(key.window) >= rpm:
                wait = max(1, math.ceil(key.window[0] + WINDOW_S - now))
                key.rate_limited += 1
                return Refusal(
                    429, f"Rate limit exceeded: {rpm} requests per minute for this key",
                    headers={"Retry-After": str(wait)},
                )  # fmt: skip
            key.window.append(now)
            key.in_flight += 1
            key.requests += 1
            return None

    def finish(self, api_key: str, cost_usd: float) -> None:
        """The admitted request answered; ``cost_usd`` is what its ``usage.cost`` said."""
        with self._lock:
            key = self._keys.setdefault(api_key, _Key())
            key.in_flight = max(0, key.in_flight - 1)
            key.usage_usd += max(0.0, cost_usd)

    def in_flight(self, api_key: str) -> int:
        with self._lock:
            key = self._keys.get(api_key)
            return key.in_flight if key else 0

    def stats(self, api_key: str) -> dict[str, Any]:
        with self._lock:
            key = self._keys.get(api_key, _Key())
            return {
                "requests": key.requests,
                "rate_limited": key.rate_limited,
                "payment_required": key.payment_required,
                "in_flight": key.in_flight,
                "usage_usd": key.usage_usd,
            }

    def key_info(self, api_key: str) -> dict[str, Any]:
        """The body of OpenRouter's ``GET /api/v1/key`` for this key."""
        with self._lock:
            key = self._keys.get(api_key, _Key())
            limits = self.limits
            limit = limits.key_limit_usd if limits.key_limit_usd is not None else limits.credits_usd
            remaining = None if limit is None else max(0.0, limit - key.usage_usd)
            usage = round(key.usage_usd, 10)
            return {
                "data": {
                    "label": f"sk-or-v1-{api_key[-3:]}..." if len(api_key) > 3 else "sk-or-v1-...",
                    "limit": limit,
                    "limit_remaining": None if remaining is None else round(remaining, 10),
                    "limit_reset": None,
                    "include_byok_in_limit": False,
                    "usage": usage,
                    "usage_daily": usage,
                    "usage_weekly": usage,
                    "usage_monthly": usage,
                    "byok_usage": 0,
                    "byok_usage_daily": 0,
                    "byok_usage_weekly": 0,
                    "byok_usage_monthly": 0,
                    "is_free_tier": False,
                }
            }

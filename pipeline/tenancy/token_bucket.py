"""The token-bucket maths, once: the webhook intake throttle (admit or refuse with a
Retry-After) and the tenants' LLM/SDP rate limiters (book a token and wait for it) both use it.

A bucket earns ``rate_per_s`` tokens a second up to ``capacity`` (the burst). The two ways of
spending differ only in what happens when the bucket is empty: ``try_take`` leaves it alone and
says how long until a token is there (the caller refuses the request), ``reserve`` books the
next token anyway, so the balance goes negative and later callers queue behind it (the caller
sleeps, never blocking another tenant).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenBucket"]


@dataclass
class TokenBucket:
    rate_per_s: float
    capacity: float
    tokens: float
    updated: float  # clock reading of the last refill

    @classmethod
    def full(cls, rate_per_s: float, capacity: float, now: float) -> TokenBucket:
        """A new bucket starts full: a first burst is allowed."""
        return cls(rate_per_s=rate_per_s, capacity=capacity, tokens=capacity, updated=now)

    def refill(self, now: float) -> None:
        """Add what was earned since the last refill, at the current rate, up to capacity."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now

    def try_take(self, now: float) -> float:
        """Take a token if one is there (returns 0.0); otherwise take nothing and return the
        seconds until one will be."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s

    def reserve(self, now: float) -> float:
        """Take the next token even if it is not earned yet; the seconds to wait before using
        it (0.0 when it was there)."""
        self.refill(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate_per_s

"""A per-key cache of async lookups that go stale after a few seconds.

Tenant rows are read on every webhook and every job but change rarely (rotation, disabling,
settings); a short TTL turns one query (plus decryption) per request into one per key per
``ttl_s``, and bounds how long a change takes to apply.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self, load: Callable[[K], Awaitable[V]], *, ttl_s: float, max_entries: int = 10_000
    ) -> None:
        self._load = load
        self._ttl = ttl_s
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    async def get(self, key: K) -> V:
        """The cached value, or a fresh load; misses (e.g. None) are cached like hits."""
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        value = await self._load(key)
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (now, value)
        return value

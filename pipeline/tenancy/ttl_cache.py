"""A per-key cache of async lookups that go stale after a few seconds.

Tenant rows are read on every webhook and every job but change rarely (rotation, disabling,
settings); a short TTL turns one query (plus decryption) per request into one per key per
``ttl_s``, and bounds how long a change takes to apply: a value is served for at most ``ttl_s``
after its load began.

Concurrent misses for one key share one load. Without that, every request for a tenant that
arrives while its expired entry is being reloaded starts a load of its own, and under a flood
those loads queue for the same database connections the requests need. The shared load runs
as its own task, so a caller that is cancelled (a client gone) does not cancel it for the
others; a failed load is not cached, and each waiter gets its error.
"""

from __future__ import annotations

import asyncio
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
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        """The cached value, or a fresh load; misses (e.g. None) are cached like hits."""
        cached = self._entries.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._fill(key))
            self._loading[key] = loading
            loading.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(loading)

    async def _fill(self, key: K) -> V:
        started = time.monotonic()
        value = await self._load(key)
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (started, value)
        return value

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved: a load every waiter left is not an unhandled error

"""Per-client request limits that one client cannot turn against everyone (per replica).

Each client (``serve_app.guards.client_address``: its real address, IPv6 by /64) has its own
token bucket, checked before any shared budget, so a client's refused requests spend nothing
that others need. The table of buckets is bounded: at most ``max_clients`` entries; a newcomer
takes the place of a client seen least recently only if that client's bucket has refilled (it
then holds nothing worth keeping), and waits otherwise. The global guard is a budget for
*newcomers*, clients not in the table: when a flood from many addresses spends it (or fills the
table), new addresses wait (429 + Retry-After) while every client already in the table keeps
its own limit, so technicians in the middle of their work are not locked out and the table
cannot be churned faster than the budget allows.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable

from pipeline.tenancy.rate_limiter import TokenBucket

DEFAULT_MAX_CLIENTS = 10_000
NEWCOMER_FACTOR = 20  # newcomers per minute, per replica: 20 clients' worth of requests
EVICTION_SCAN = 8  # least recently seen entries looked at for an idle one to replace


class ClientThrottle:
    def __init__(
        self,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        newcomer_factor: float = NEWCOMER_FACTOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_clients = max_clients
        self.newcomer_factor = newcomer_factor
        self._clock = clock
        self._clients: OrderedDict[str, TokenBucket] = OrderedDict()
        self._newcomers: TokenBucket | None = None

    def __len__(self) -> int:
        return len(self._clients)

    def try_acquire(self, client: str, per_minute: int) -> float:
        """0 when admitted, else the seconds until this client may try again (Retry-After)."""
        now = self._clock()
        rate, capacity = per_minute / 60.0, max(1.0, per_minute / 6.0)
        bucket = self._clients.get(client)
        if bucket is None:
            wait = self._make_room(now) or self._newcomer_budget(per_minute, now).try_take(now)
            if wait > 0:
                return wait
            bucket = TokenBucket.full(rate, capacity, now)
            self._clients[client] = bucket
        else:
            self._clients.move_to_end(client)
        bucket.rate_per_s, bucket.capacity = rate, capacity  # a changed setting applies at once
        return bucket.try_take(now)

    def _make_room(self, now: float) -> float:
        """0 when the table has room for one more client, after dropping an idle one if need
        be; else the seconds until the least recently seen client's bucket is full again."""
        if len(self._clients) < self.max_clients:
            return 0.0
        idle = None
        for key, bucket in itertools.islice(self._clients.items(), EVICTION_SCAN):
            bucket.refill(now)
            if bucket.tokens >= bucket.capacity:
                idle = key
                break
        if idle is not None:
            del self._clients[idle]
            return 0.0
        oldest = next(iter(self._clients.values()))
        return max(0.001, (oldest.capacity - oldest.tokens) / oldest.rate_per_s)

    def _newcomer_budget(self, per_minute: int, now: float) -> TokenBucket:
        rate = per_minute * self.newcomer_factor / 60.0
        if self._newcomers is None:
            self._newcomers = TokenBucket.full(rate, max(1.0, rate * 10), now)
        self._newcomers.rate_per_s, self._newcomers.capacity = rate, max(1.0, rate * 10)
        return self._newcomers

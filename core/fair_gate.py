"""Tenant-fair admission wherever jobs of many tenants queue for a few places, so a quiet
tenant's job does not wait behind a flooding tenant's jobs inside the pipeline.

Two uses: the Enhancer's busy stages (below), and every pool's database connections
(``db.pool.tenant_transaction``: a strict gate of the pool's size, ``admit_below_share=False``).

The Dispatcher claims fairly, but the stages' own queues are first come, first served: Serve's
routers, the database pools, the event loops' CPU. Without a gate, with a flood of one
tenant's jobs in flight, a second tenant's job queues behind all of them there.

A gate in each Enhancer replica bounds how many jobs are in their working stages at once and
hands out places tenant-fair, so the waiting happens here, where order can be chosen:

- **Work-conserving.** A free place is never left unused while a job waits; a tenant alone
  uses every place.
- **A tenant below its share never waits.** Its job enters at once, even when the gate is full
  (the capacity is exceeded by at most the missing shares; nothing is preempted). The share is
  the capacity split equally over the tenants holding or wanting places. This is also what keeps
  one tenant's slow jobs (an SDP that hangs, a slow LLM) from stalling another: places they hold
  do not keep a tenant below its share out.
- **Otherwise fairest first.** When a place frees, it goes to the waiting tenant holding the
  fewest places (the one waiting longest on a tie), first in, first out within a tenant.

Weights are the claim's business (``dispatch_weight`` decides how many of each tenant's jobs
are claimed); the gate only orders the jobs already here, so it does not undo them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class FairGate:
    def __init__(self, capacity: int, *, admit_below_share: bool = True) -> None:
        """``admit_below_share=False`` makes the capacity strict (a tenant below its share
        waits for the next free place, and gets it first): for places that cannot be exceeded,
        such as a pool's connections."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._admit_below_share = admit_below_share
        self._holding: Counter[str] = Counter()
        self._held = 0
        self._waiting: dict[str, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._arrivals = itertools.count()
        self.entered_below_share = 0  # entries past a full gate (the share rule), for status

    @asynccontextmanager
    async def place(self, tenant: str) -> AsyncIterator[None]:
        """Hold one place for ``tenant`` while the block runs."""
        await self._acquire(tenant)
        try:
            yield
        finally:
            self._release(tenant)

    def status(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "held": self._held,
            "waiting": sum(len(q) for q in self._waiting.values()),
            "tenants_waiting": len(self._waiting),
            "entered_below_share": self.entered_below_share,
        }

    def _share(self, tenant: str) -> int:
        tenants = len(set(self._holding) | set(self._waiting) | {tenant})
        return max(1, self.capacity // tenants)

    def _may_enter(self, tenant: str) -> bool:
        if self._held < self.capacity:
            return True
        if self._admit_below_share and self._holding[tenant] < self._share(tenant):
            self.entered_below_share += 1
            return True
        return False

    async def _acquire(self, tenant: str) -> None:
        if tenant not in self._waiting and self._may_enter(tenant):
            self._take(tenant)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant, deque()).append((next(self._arrivals), future))
        self._grant()  # (a place may be free: the queue is only ever waited on when full)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(tenant)  # granted as it was cancelled: give the place back
            else:
                self._forget(tenant, future)
            raise

    def _take(self, tenant: str) -> None:
        self._held += 1
        self._holding[tenant] += 1

    def _release(self, tenant: str) -> None:
        self._held -= 1
        self._holding[tenant] -= 1
        if self._holding[tenant] <= 0:
            del self._holding[tenant]
        self._grant()

    def _grant(self) -> None:
        """Fill free places fairest first; past a full gate, admit tenants below their share."""
        while self._waiting:
            tenant = min(self._waiting, key=lambda t: (self._holding[t], self._waiting[t][0][0]))
            queue = self._waiting[tenant]
            if queue[0][1].done():
                # cancelled while queued: Task.cancel() cancels the future at once, and the
                # waiter's own clean-up (_forget) runs only at its next step
                queue.popleft()
                if not queue:
                    del self._waiting[tenant]
                continue
            if not self._may_enter(tenant):
                return  # the fairest waiter may not enter: no other one may either
            _, future = queue.popleft()
            if not queue:
                del self._waiting[tenant]
            self._take(tenant)
            future.set_result(None)

    def _forget(self, tenant: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(tenant)
        if queue is None:
            return
        remaining = deque(item for item in queue if item[1] is not future)
        if remaining:
            self._waiting[tenant] = remaining
        else:
            del self._waiting[tenant]

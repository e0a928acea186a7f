"""The Enhancer's tenant-fair gate (core.fair_gate), on its own: who gets a place, when."""

from __future__ import annotations

import asyncio

import pytest

from core.fair_gate import FairGate


class Holder:
    """A job holding a gate place until released; records when it got in."""

    def __init__(self, gate: FairGate, tenant: str, log: list[str]) -> None:
        self.tenant = tenant
        self.entered = asyncio.Event()
        self._done = asyncio.Event()
        self._log = log
        self.task = asyncio.create_task(self._run(gate))

    async def _run(self, gate: FairGate) -> None:
        async with gate.place(self.tenant):
            self._log.append(self.tenant)
            self.entered.set()
            await self._done.wait()

    async def finish(self) -> None:
        self._done.set()
        await self.task


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_tenant_alone_uses_every_place_and_no_more() -> None:
    gate, log = FairGate(3), []
    jobs = [Holder(gate, "a", log) for _ in range(5)]
    await settle()
    assert log == ["a"] * 3
    assert gate.status()["held"] == 3 and gate.status()["waiting"] == 2
    await jobs[0].finish()
    await settle()
    assert log == ["a"] * 4  # a freed place is used at once: work-conserving
    for job in jobs[1:]:
        await job.finish()
    assert gate.status()["held"] == 0 and gate.status()["waiting"] == 0


async def test_a_quiet_tenant_enters_at_once_while_a_flood_waits() -> None:
    gate, log = FairGate(4), []
    flood = [Holder(gate, "a", log) for _ in range(10)]
    await settle()
    quiet = Holder(gate, "b", log)
    await settle()
    assert quiet.entered.is_set()  # below its share (4 // 2): no wait behind a's six
    assert log == ["a"] * 4 + ["b"]
    assert gate.status()["entered_below_share"] == 1
    assert gate.status()["waiting"] == 6
    for job in [*flood, quiet]:
        job._done.set()
    await asyncio.gather(*(j.task for j in [*flood, quiet]))


async def test_a_freed_place_goes_to_the_tenant_holding_fewest() -> None:
    gate, log = FairGate(4), []
    flood = [Holder(gate, "a", log) for _ in range(8)]
    await settle()
    b_jobs = [Holder(gate, "b", log) for _ in range(3)]
    await settle()
    # b got its share (4 // 2) past the full gate; its third waits, behind a's four in time
    assert log == ["a"] * 4 + ["b"] * 2
    for job in flood[:3]:
        await job.finish()
    await settle()
    assert log[6:] == ["a"]  # one place under capacity: a holds 1, b 2 -> a
    await b_jobs[0].finish()
    await settle()
    # a place again: a holds 2, b 1 -> b's waiter, although a's waiters came first
    assert log[7:] == ["b"]
    for job in [*flood, *b_jobs]:
        job._done.set()
    await asyncio.gather(*(j.task for j in [*flood, *b_jobs]))
    assert log.count("a") == 8 and log.count("b") == 3


async def test_slow_jobs_of_one_tenant_do_not_stall_another() -> None:
    """a's jobs hold every place and never finish (an SDP that hangs); b still flows, one job
    after another, because b below its share always gets in."""
    gate, log = FairGate(2), []
    stuck = [Holder(gate, "a", log) for _ in range(4)]
    await settle()
    for _ in range(3):
        first, second = Holder(gate, "b", log), Holder(gate, "b", log)
        await settle()
        assert first.entered.is_set() and not second.entered.is_set()  # share is 1
        await first.finish()
        await settle()
        assert second.entered.is_set()  # its own finished job let it in: no wait for a
        await second.finish()
    assert log.count("b") == 6
    for job in stuck:
        job._done.set()
    await asyncio.gather(*(j.task for j in stuck))


async def test_a_cancelled_waiter_leaves_no_place_behind() -> None:
    gate, log = FairGate(1), []
    holder = Holder(gate, "a", log)
    await settle()
    waiter = Holder(gate, "a", log)
    await settle()
    waiter.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    assert gate.status()["waiting"] == 0
    await holder.finish()
    assert gate.status()["held"] == 0
    after = Holder(gate, "a", log)
    await settle()
    assert after.entered.is_set()
    await after.finish()


async def test_a_waiter_cancelled_as_it_is_granted_gives_the_place_back() -> None:
    gate, log = FairGate(1), []
    holder = Holder(gate, "a", log)
    await settle()
    waiter = Holder(gate, "a", log)
    await settle()
    await holder.finish()  # grants the place to waiter (its future resolves) ...
    waiter.task.cancel()  # ... and waiter is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    assert gate.status()["held"] == 0


async def test_a_waiter_cancelled_before_a_place_frees_is_passed_over() -> None:
    """Task.cancel() cancels the waiter's future at once; its own clean-up runs only at its next
    step. A place freed in between must go to the next waiter, not to the cancelled one."""
    gate, log = FairGate(1), []
    holder = Holder(gate, "a", log)
    await settle()
    waiter, after = Holder(gate, "a", log), Holder(gate, "a", log)
    await settle()
    holder._done.set()  # the holder leaves at its next step ...
    waiter.task.cancel()  # ... when the waiter's future is already cancelled
    await holder.task
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    await settle()
    assert after.entered.is_set()
    assert gate.status()["held"] == 1 and gate.status()["waiting"] == 0
    await after.finish()


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FairGate(0)


async def test_a_strict_gate_stays_within_capacity_and_frees_to_the_quiet_tenant_first() -> None:
    gate, log = FairGate(2, admit_below_share=False), []
    flood = [Holder(gate, "a", log) for _ in range(5)]
    await settle()
    quiet = Holder(gate, "b", log)
    await settle()
    assert not quiet.entered.is_set()  # strict: no entry past a full gate, even below share
    assert gate.status()["held"] == 2 and gate.status()["entered_below_share"] == 0
    await flood[0].finish()
    await settle()
    assert quiet.entered.is_set()  # ahead of a's three earlier waiters
    assert log == ["a", "a", "b"] and gate.status()["held"] == 2
    await quiet.finish()
    for job in flood[1:]:
        await job.finish()
    assert log == ["a", "a", "b", "a", "a", "a"]
    assert gate.status()["held"] == 0

"""TtlCache: values expire after ``ttl_s``, concurrent misses share one load, a cancelled
caller does not cancel the load for the others, and a failed load is not cached."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.tenancy.ttl_cache import TtlCache


class Loader:
    def __init__(self, delay_s: float = 0.05) -> None:
        self.calls: list[str] = []
        self.delay_s = delay_s
        self.fail = False

    async def __call__(self, key: str) -> str:
        self.calls.append(key)
        value = f"{key}#{len(self.calls)}"
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("database away")
        return value


async def test_concurrent_misses_share_one_load():
    load = Loader()
    cache: TtlCache[str, str] = TtlCache(load, ttl_s=60)
    values = await asyncio.gather(*(cache.get("a") for _ in range(32)), cache.get("b"))
    assert values == ["a#1"] * 32 + ["b#2"]
    assert load.calls == ["a", "b"]
    assert await cache.get("a") == "a#1"
    assert load.calls == ["a", "b"]


async def test_a_value_is_reloaded_after_its_ttl():
    load = Loader(delay_s=0)
    cache: TtlCache[str, str] = TtlCache(load, ttl_s=0.1)
    assert await cache.get("a") == "a#1"
    assert await cache.get("a") == "a#1"
    await asyncio.sleep(0.15)
    assert await cache.get("a") == "a#2"


async def test_a_cancelled_caller_leaves_the_load_to_the_others():
    load = Loader(delay_s=0.1)
    cache: TtlCache[str, str] = TtlCache(load, ttl_s=60)
    first = asyncio.ensure_future(cache.get("a"))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(cache.get("a"))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "a#1"
    assert first.cancelled()
    assert load.calls == ["a"]


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached():
    load = Loader()
    load.fail = True
    cache: TtlCache[str, str] = TtlCache(load, ttl_s=60)
    results = await asyncio.gather(cache.get("a"), cache.get("a"), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert load.calls == ["a"]
    load.fail = False
    assert await cache.get("a") == "a#2"


async def test_a_load_every_caller_left_is_not_an_unhandled_error(caplog):
    load = Loader(delay_s=0.05)
    load.fail = True
    cache: TtlCache[str, str] = TtlCache(load, ttl_s=60)
    caller = asyncio.ensure_future(cache.get("a"))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0.1)
    assert "never retrieved" not in caplog.text

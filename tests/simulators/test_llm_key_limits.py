"""The LLM simulator's per-key rate limit and credit, over real loopback HTTP with the real
``openai`` client: 429 with ``Retry-After`` beyond the key's requests per minute or concurrent
requests, 402 with OpenRouter's ``limit_source`` once the credit is spent, and OpenRouter's
``GET /api/v1/key`` reporting what is left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import openai
import pytest

from simulators.llm import KeyLimits, LLMSimulatorState, create_app
from simulators.serving import ServerHandle, run_in_thread

KEY = "sk-or-v1-limits"
OTHER = "sk-or-v1-other"
MESSAGES = [
    {"role": "system", "content": "rules"},
    {"role": "user", "content": "<<<TICKET>>>\nsubject: VPN drops\n<<<END TICKET>>>\n"},
]


Served = tuple[LLMSimulatorState, ServerHandle]


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    state = LLMSimulatorState(api_keys=[KEY, OTHER])
    with run_in_thread(create_app(state), graceful_shutdown_s=0.2) as handle:
        yield state, handle


@pytest.fixture
def state(served: Served) -> LLMSimulatorState:
    served[0].reset()
    return served[0]


@pytest.fixture
async def client(served: Served) -> AsyncIterator[openai.AsyncOpenAI]:
    c = openai.AsyncOpenAI(
        base_url=f"{served[1].url}/api/v1", api_key=KEY, max_retries=0, timeout=10
    )
    yield c
    await c.close()


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served[1].url, timeout=10) as c:
        yield c


async def test_requests_per_minute_is_a_429_with_retry_after(
    state: LLMSimulatorState, client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    state.keys.configure(KeyLimits(requests_per_minute=3))
    for _ in range(3):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as exc:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    retry_after = int(exc.value.response.headers["retry-after"])
    assert 55 <= retry_after <= 60  # until the first of the window leaves it
    assert "3 requests per minute" in exc.value.body["message"]
    # the limit is the key's: another key is not affected
    other = await http.post(
        "/api/v1/chat/completions",
        json={"model": "m", "messages": MESSAGES},
        headers={"Authorization": f"Bearer {OTHER}"},
    )
    assert other.status_code == 200
    stats = (await http.get("/_sim/key-stats", params={"key": KEY})).json()
    assert stats["requests"] == 3 and stats["rate_limited"] == 1 and stats["in_flight"] == 0
    assert [r.status for r in state.requests] == [200, 200, 200, 429, 200]


async def test_concurrency_beyond_the_limit_is_a_429(
    state: LLMSimulatorState, client: openai.AsyncOpenAI
) -> None:
    state.set_latency(0.5)
    state.keys.configure(KeyLimits(concurrency=2))

    async def call() -> int:
        try:
            await client.chat.completions.create(model="m", messages=MESSAGES)
        except openai.RateLimitError as exc:
            assert exc.response.headers["retry-after"] == "1"
            return 429
        return 200

    statuses = await asyncio.gather(*(call() for _ in range(5)))
    assert sorted(statuses) == [200, 200, 429, 429, 429]
    assert state.keys.in_flight(KEY) == 0  # every admitted request was let go
    assert await call() == 200  # and the slots are free again


async def test_credit_is_spent_then_402_and_the_key_endpoint_reports_it(
    state: LLMSimulatorState, client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    first = await client.chat.completions.create(model="m", messages=MESSAGES)
    cost = first.usage.model_extra["cost"]
    assert cost > 0
    state.keys.reset()  # nothing spent yet; credit for two and a half answers
    state.keys.configure(KeyLimits(credits_usd=cost * 2.5))
    info = (await http.get("/api/v1/key", headers={"Authorization": f"Bearer {KEY}"})).json()
    assert info["data"]["limit"] == pytest.approx(cost * 2.5)
    assert info["data"]["limit_remaining"] == pytest.approx(cost * 2.5)
    for _ in range(3):  # the third starts with credit left and spends past it
        await client.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.APIStatusError) as exc:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert exc.value.status_code == 402
    assert exc.value.body["metadata"]["limit_source"] == "openrouter_credits"
    assert "retry-after" not in exc.value.response.headers
    info = (await http.get("/api/v1/key", headers={"Authorization": f"Bearer {KEY}"})).json()
    data = info["data"]
    assert data["limit_remaining"] == 0 and data["usage"] == pytest.approx(cost * 3, rel=0.01)
    assert data["is_free_tier"] is False and data["limit_reset"] is None
    # a top-up (a new limit) lets the key answer again
    await http.put("/_sim/key-limits", json={"credits_usd": 1.0})
    await client.chat.completions.create(model="m", messages=MESSAGES)


async def test_key_limit_is_402_with_its_own_limit_source(
    state: LLMSimulatorState, client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    assert (await http.put("/_sim/key-limits", json={"key_limit_usd": 0})).status_code == 200
    with pytest.raises(openai.APIStatusError) as exc:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert exc.value.status_code == 402
    assert exc.value.body["metadata"]["limit_source"] == "openrouter_key_limit"


async def test_key_endpoint_needs_the_key_and_says_unlimited_as_null(
    state: LLMSimulatorState, http: httpx.AsyncClient
) -> None:
    assert (await http.get("/api/v1/key")).status_code == 401
    bad = await http.get("/api/v1/key", headers={"Authorization": "Bearer sk-or-v1-nope"})
    assert bad.status_code == 401
    ok = await http.get("/v1/key", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200
    assert ok.json()["data"]["limit"] is None and ok.json()["data"]["limit_remaining"] is None


async def test_key_limits_control_api_refuses_nonsense(http: httpx.AsyncClient) -> None:
    assert (await http.put("/_sim/key-limits", json={"concurrency": 0})).status_code == 422
    r = await http.put("/_sim/key-limits", json={"requests_per_minute": 10, "concurrency": 2})
    assert r.json() == {
        "requests_per_minute": 10,
        "concurrency": 2,
        "credits_usd": None,
        "key_limit_usd": None,
    }
    assert (await http.post("/_sim/reset")).status_code == 200
    assert (await http.get("/_sim/key-limits")).json()["requests_per_minute"] is None

"""LLMClient against the LLM simulator over loopback: retries, waits, fallback, rejections.

Nothing in the openai client is mocked; the simulator's request log is the ground truth for
how many requests really went out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.llm.circuit_breaker import CircuitBreaker
from pipeline.llm.client import LLMClient, LLMClientConfig, LLMRejected, LLMUnavailable
from pipeline.llm.contract import AttemptFailed, parse_body, parse_enhancement, parse_retry_after
from simulators.llm import LLMSimulatorState, create_app
from simulators.serving import ServerHandle, free_port, run_in_thread

KEY = "sk-or-v1-client-test"
PRIMARY, SECONDARY = "vendor/primary", "vendor/secondary"
USER = """<<<TICKET>>>
id: 1
subject: Outlook keeps asking for a password
description:
since this morning
<<<END TICKET>>>

SOURCES (cite only these ids):
[ticket:77] subject: Outlook password prompts | resolution: Cleared cached credentials | score: 0.9
"""
MESSAGES = [{"role": "system", "content": "answer in JSON"}, {"role": "user", "content": USER}]


@dataclass
class Sim:
    state: LLMSimulatorState
    handle: ServerHandle

    @property
    def base_url(self) -> str:
        return f"{self.handle.url}/api/v1"

    def retry_counts(self) -> list[int | None]:
        return [r.retry_count for r in self.state.requests]

    def models(self) -> list[str | None]:
        return [r.model for r in self.state.requests]


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    state = LLMSimulatorState(api_keys=[KEY])
    with run_in_thread(create_app(state), graceful_shutdown_s=0.2) as handle:
        yield Sim(state, handle)


@pytest.fixture(autouse=True)
def _fresh(sim: Sim) -> None:
    sim.state.reset()


@dataclass
class Recorder:
    sleeps: list[float]
    outcomes: list[str]
    before_calls: int = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(seconds)

    def on_call(self, outcome: str, seconds: float) -> None:
        self.outcomes.append(outcome)

    async def before_call(self) -> None:
        self.before_calls += 1


MakeClient = Callable[..., LLMClient]


@pytest.fixture
async def rec() -> Recorder:
    return Recorder([], [])


@pytest.fixture
async def make_client(sim: Sim, rec: Recorder) -> AsyncIterator[MakeClient]:
    clients: list[LLMClient] = []

    def factory(breaker: CircuitBreaker | None = None, **overrides: Any) -> LLMClient:
        cfg: dict[str, Any] = {
            "base_url": sim.base_url,
            "api_key": KEY,
            "models": (PRIMARY,),
            "timeout_s": 2.0,
            "deadline_s": 10.0,
            "backoff_base_s": 0.02,
            "backoff_max_s": 0.1,
            "referer": "https://msp.example",
            "title": "AI Agents test",
        }
        cfg.update(overrides)
        client = LLMClient(
            LLMClientConfig(**cfg),
            breaker=breaker,
            on_call=rec.on_call,
            before_call=rec.before_call,
            sleep=rec.sleep,
        )
        clients.append(client)
        return client

    yield factory
    for c in clients:
        await c.aclose()


async def test_happy_path(sim: Sim, make_client: MakeClient, rec: Recorder) -> None:
    result = await make_client().complete(MESSAGES)
    assert result.model == PRIMARY and result.attempts == 1
    assert result.enhancement.related_tickets == ["ticket:77"]
    assert result.prompt_tokens > 0 and result.completion_tokens > 0 and result.cost_usd > 0
    assert result.generation_id and result.generation_id.startswith("gen-sim-")
    assert result.provider == "SimProvider"
    (req,) = sim.state.requests
    assert req.headers["http-referer"] == "https://msp.example"
    assert req.headers["x-title"] == req.headers["x-openrouter-title"] == "AI Agents test"
    assert req.body["response_format"] == {"type": "json_object"}
    assert req.retry_count == 0
    assert rec.outcomes == ["ok"] and rec.before_calls == 1


async def test_retry_after_ms_is_honoured(sim: Sim, make_client: MakeClient, rec: Recorder) -> None:
    sim.state.add_fault("rate_limit", retry_after_ms=300)
    result = await make_client().complete(MESSAGES)
    assert result.attempts == 2
    assert sim.retry_counts() == [0, 1]
    assert rec.sleeps == [pytest.approx(0.3)]
    assert rec.outcomes == ["rate_limited", "ok"] and rec.before_calls == 2


async def test_429_without_retry_after_backs_off_exponentially(
    sim: Sim, make_client: MakeClient, rec: Recorder
) -> None:
    sim.state.add_fault("rate_limit", count=2)
    result = await make_client(backoff_base_s=0.05).complete(MESSAGES)
    assert result.attempts == 3 and sim.state.request_count == 3
    first, second = rec.sleeps
    assert 0.0375 <= first <= 0.05 and 0.075 <= second <= 0.1  # 0.05·2ⁿ with 75–100 % jitter


async def test_retry_after_longer_than_allowed_gives_up_at_once(
    sim: Sim, make_client: MakeClient, rec: Recorder
) -> None:
    sim.state.add_fault("rate_limit", retry_after=45)
    with pytest.raises(LLMUnavailable, match="asked to wait 45"):
        await make_client(max_retry_after_s=30).complete(MESSAGES)
    assert sim.state.request_count == 1 and rec.sleeps == []
    sim.state.add_fault("rate_limit", retry_after=5)
    with pytest.raises(LLMUnavailable, match="asked to wait 5"):
        await make_client(deadline_s=2).complete(MESSAGES)  # 5 s is past the deadline
    assert sim.state.request_count == 2


@pytest.mark.parametrize(
    ("fault", "status", "words"),
    [
        ({"kind": "no_credits"}, 402, "insufficient credits (openrouter_credits)"),
    ],
)
async def test_402_is_never_retried(
    sim: Sim, make_client: MakeClient, rec: Recorder, fault: dict[str, Any], status: int, words: str
) -> None:
    sim.state.add_fault(**fault)
    with pytest.raises(LLMRejected) as exc:
        await make_client().complete(MESSAGES)
    assert exc.value.status == status and words in exc.value.reason
    assert exc.value.attempts == 1
    assert sim.state.request_count == 1 and rec.outcomes == ["rejected"]


async def test_401_and_400_are_not_retried(sim: Sim, make_client: MakeClient) -> None:
    with pytest.raises(LLMRejected) as exc:
        await make_client(api_key="sk-wrong").complete(MESSAGES)
    assert exc.value.status == 401 and "authentication" in exc.value.reason
    with pytest.raises(LLMRejected) as exc:
        await make_client().complete([])  # the simulator refuses an empty message list
    assert exc.value.status == 400
    assert sim.state.request_count == 2


async def test_503_twice_then_success(sim: Sim, make_client: MakeClient, rec: Recorder) -> None:
    sim.state.add_fault("server_error", status=503, count=2)
    result = await make_client().complete(MESSAGES)
    assert result.attempts == 3 and sim.retry_counts() == [0, 1, 2]
    assert rec.outcomes == ["server_error", "server_error", "ok"]


async def test_5xx_until_attempts_run_out(sim: Sim, make_client: MakeClient) -> None:
    sim.state.add_fault("server_error", status=500, count=None)
    with pytest.raises(LLMUnavailable, match="retries exhausted after 3 attempt") as exc:
        await make_client().complete(MESSAGES)
    assert "HTTP 500" in exc.value.reason and exc.value.attempts == 3
    assert sim.state.request_count == 3


async def test_timeouts_are_retried_then_unavailable(
    sim: Sim, make_client: MakeClient, rec: Recorder
) -> None:
    sim.state.add_fault("timeout", seconds=1.5, count=None)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="no response within 0.2s"):
        await make_client(timeout_s=0.2, max_attempts=2).complete(MESSAGES)
    assert time.monotonic() - started < 1.2
    assert rec.outcomes == ["timeout", "timeout"] and sim.state.request_count == 2


async def test_overall_deadline_bounds_the_call(sim: Sim, make_client: MakeClient) -> None:
    sim.state.add_fault("timeout", seconds=1.5, count=None)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable):
        await make_client(timeout_s=0.3, deadline_s=0.45, max_attempts=5).complete(MESSAGES)
    assert time.monotonic() - started < 1.0
    assert sim.state.request_count == 2  # the second attempt only got the deadline's remainder


@pytest.mark.parametrize("kind", ["error_body", "empty_content"])
async def test_200_that_is_a_failure_is_retried(
    sim: Sim, make_client: MakeClient, rec: Recorder, kind: str
) -> None:
    sim.state.add_fault(kind)
    result = await make_client().complete(MESSAGES)
    assert result.attempts == 2 and rec.outcomes == ["error_body", "ok"]


async def test_invalid_output_is_retried_once_only(
    sim: Sim, make_client: MakeClient, rec: Recorder
) -> None:
    sim.state.add_fault("malformed", count=None)
    with pytest.raises(LLMUnavailable, match="invalid output") as exc:
        await make_client(max_attempts=5).complete(MESSAGES)
    assert "confidence" in exc.value.reason  # says which field was wrong
    assert sim.state.request_count == 2
    assert rec.outcomes == ["invalid_output", "invalid_output"]


async def test_invalid_output_then_valid(sim: Sim, make_client: MakeClient) -> None:
    sim.state.add_fault("not_json")
    result = await make_client().complete(MESSAGES)
    assert result.attempts == 2


async def test_falls_back_to_the_next_model(
    sim: Sim, make_client: MakeClient, rec: Recorder
) -> None:
    sim.state.fail_model(PRIMARY, status=502)
    result = await make_client(models=(PRIMARY, SECONDARY)).complete(MESSAGES)
    assert result.model == SECONDARY and result.attempts == 3
    assert result.models_tried == [PRIMARY, SECONDARY]
    assert sim.models() == [PRIMARY, PRIMARY, SECONDARY]
    assert len(rec.sleeps) == 1  # no back-off when switching to a different model


async def test_openrouter_side_fallback_list_is_sent(sim: Sim, make_client: MakeClient) -> None:
    sim.state.fail_model(PRIMARY)
    client = make_client(
        models=(PRIMARY, SECONDARY),
        openrouter_fallback=True,
        provider={"data_collection": "deny", "zdr": True},
    )
    result = await client.complete(MESSAGES)
    assert result.model == SECONDARY and result.attempts == 1
    (req,) = sim.state.requests
    assert req.models == [PRIMARY, SECONDARY]
    assert req.body["provider"] == {"data_collection": "deny", "zdr": True}


async def test_connection_refused_is_unavailable(make_client: MakeClient, rec: Recorder) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(LLMUnavailable, match="connection"):
        await client.complete(MESSAGES)
    assert rec.outcomes == ["connection_error"] * 3


async def test_open_breaker_skips_the_request(
    sim: Sim, make_client: MakeClient, rec: Recorder
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout_s=60)
    client = make_client(breaker=breaker, max_attempts=1)
    sim.state.add_fault("server_error", status=502)
    with pytest.raises(LLMUnavailable):
        await client.complete(MESSAGES)
    assert breaker.state == "open"
    with pytest.raises(LLMUnavailable, match="circuit breaker open"):
        await client.complete(MESSAGES)
    assert sim.state.request_count == 1 and rec.outcomes[-1] == "circuit_open"


async def test_a_402_does_not_trip_the_breaker(sim: Sim, make_client: MakeClient) -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    sim.state.add_fault("no_credits")
    with pytest.raises(LLMRejected):
        await make_client(breaker=breaker).complete(MESSAGES)
    assert breaker.state == "closed"


def test_parse_enhancement_accepts_fences_and_names_bad_fields() -> None:
    fenced = '```json\n{"summary": "s", "confidence": 0.5}\n```'
    assert parse_enhancement(fenced).summary == "s"
    assert parse_enhancement('Here you go: {"summary": "s", "confidence": 1}').confidence == 1
    with pytest.raises(ValueError, match="not JSON"):
        parse_enhancement("no json here")
    with pytest.raises(ValueError, match="summary"):
        parse_enhancement('{"summary": "", "confidence": 0.5}')


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize(
    ("body", "outcome", "retryable"),
    [
        (
            {"choices": [{"finish_reason": "error", "message": {"content": "{}"}}]},
            "error_body",
            True,
        ),
        (
            {"error": {"code": 402, "message": "Insufficient credits"}, "choices": []},
            "rejected",
            False,
        ),
        ({"choices": []}, "error_body", True),
        (
            {"choices": [{"finish_reason": "length", "message": {"content": '{"summary": "cut'}}]},
            "invalid_output",
            True,
        ),
    ],
)
def test_200_bodies_are_classified(body: dict[str, Any], outcome: str, retryable: bool) -> None:
    with pytest.raises(AttemptFailed) as exc:
        parse_body(body, {}, PRIMARY)
    assert exc.value.outcome == outcome and exc.value.retryable is retryable

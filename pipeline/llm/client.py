"""Calls an OpenAI-compatible chat endpoint (OpenRouter by default) and returns a validated
:class:`LLMEnhancement`.

The ``openai`` client runs with ``max_retries=0`` because its own retry policy is not ours: it
waits up to 120 s on a ``Retry-After``, knows nothing about our deadline, cannot fall back to
another model, never retries a 200 response whose body carries an ``error``, and its retries
are invisible to metrics. Here every attempt is counted, reported to ``on_call`` and bounded by
both ``max_attempts`` and an overall deadline. 400/401/402/403 are never retried: they will not
get better by asking again (402 means the key is out of credits).

With a ``gate`` (the tenant's view of the shared provider budget,
:mod:`pipeline.llm.provider.budget`) every attempt first waits for a grant, within the deadline,
and gives it back with what happened: a 429 then pauses the whole budget for its
``Retry-After`` (the retry waits for its next grant rather than sleeping on its own), a 402
refuses every tenant's calls at once (``LLMPaused``), and only an outage (server errors,
timeouts, connection errors, error bodies) counts toward the circuit breaker, so one tenant's
flood of 429s or its tickets that make the model answer nonsense never open it for the others.
Without a gate every failed call counts, as it did before the budget.

Every answered attempt's ``usage`` (tokens, cost; unusable answers too) is collected on the
result or the error, for the usage ledger. Each attempt sends ``x-stainless-retry-count`` (our
attempt number, as the stock client would). Reading what came back: :mod:`pipeline.llm.contract`;
each attempt's span: :mod:`pipeline.observability.genai_span`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import openai

from pipeline.llm.circuit_breaker import CircuitBreaker
from pipeline.llm.contract import AttemptFailed, LLMCallResult, classify_status, parse_body
from pipeline.llm.provider.gate import Grant, ProviderBusy, ProviderPaused, TenantGate
from pipeline.models import AttemptUsage, LLMEnhancement
from pipeline.observability.genai_span import llm_attempt_span, record_failure, record_result

log = logging.getLogger(__name__)

BeforeCall = Callable[[], Awaitable[None]]
OnCall = Callable[[str, float], Awaitable[None] | None]
ResponseFormat = Literal["json_object", "json_schema", "none"]

# Outcome labels given to on_call (and used as the metrics "outcome" label).
OUTCOMES = (
    *("ok", "rate_limited", "server_error", "timeout", "connection_error", "error_body"),
    *("invalid_output", "rejected", "circuit_open"),
)
# Failures that say the provider is down, the only ones the breaker counts when calls go
# through the shared provider budget.
OUTAGES = frozenset({"server_error", "timeout", "connection_error", "error_body"})


class LLMError(Exception):
    def __init__(
        self, reason: str, *, attempts: int = 0, usage: Sequence[AttemptUsage] = ()
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts  # requests actually sent, for the enhancement record
        self.usage = list(usage)  # what the answered attempts cost, for the usage ledger


class LLMUnavailable(LLMError):
    """The LLM could not produce a usable answer in time: retries exhausted, deadline passed,
    breaker open or output invalid. Falling back to a context-only note is the right answer.
    ``outage``: the last failure said the provider is down (what the breaker counts)."""

    def __init__(
        self,
        reason: str,
        *,
        attempts: int = 0,
        usage: Sequence[AttemptUsage] = (),
        outage: bool = True,
    ) -> None:
        super().__init__(reason, attempts=attempts, usage=usage)
        self.outage = outage


class LLMPaused(LLMUnavailable):
    """No call was made: the provider key's credit is used up (the shared budget says so)."""


class LLMRejected(LLMError):
    """The endpoint refused the request (400/401/402/403…); retrying would not help."""

    def __init__(
        self, reason: str, status: int, *, attempts: int = 0, usage: Sequence[AttemptUsage] = ()
    ) -> None:
        super().__init__(reason, attempts=attempts, usage=usage)
        self.status = status


@dataclass(frozen=True)
class LLMClientConfig:
    base_url: str
    api_key: str
    models: Sequence[str]
    timeout_s: float = 30.0  # one attempt
    deadline_s: float = 90.0  # the whole call, retries and waits included
    max_attempts: int = 3  # across all models
    attempts_per_model: int = 2  # consecutive failures before moving to the next model
    max_invalid_output_retries: int = 1
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0
    response_format: ResponseFormat = "json_object"
    temperature: float | None = 0.2
    max_tokens: int | None = 1500
    referer: str | None = None
    title: str | None = "AI Agents"
    openrouter_fallback: bool = False  # also send extra_body.models for OpenRouter-side fallback
    # OpenRouter provider routing, e.g. {"data_collection": "deny", "zdr": True}
    provider: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("at least one model is required")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


class LLMClient:
    """One client per base URL and key; safe for many concurrent ``complete`` calls."""

    def __init__(
        self,
        config: LLMClientConfig,
        *,
        breaker: CircuitBreaker | None = None,
        before_call: BeforeCall | None = None,
        on_call: OnCall | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.breaker = breaker
        self._before_call = before_call
        self._on_call = on_call
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        headers: dict[str, str] = {}
        if config.referer:
            headers["HTTP-Referer"] = config.referer
        if config.title:
            headers["X-Title"] = config.title
            headers["X-OpenRouter-Title"] = config.title
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=0,
            timeout=config.timeout_s,
            default_headers=headers,
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        before_call: BeforeCall | None = None,
        gate: TenantGate | None = None,
    ) -> LLMCallResult:
        """Return a validated enhancement or raise LLMUnavailable / LLMRejected."""
        if self.breaker is not None and not self.breaker.allow():
            await self._emit("circuit_open", 0.0)
            raise LLMUnavailable(
                f"circuit breaker open; next probe in {self.breaker.retry_in_s():.0f}s"
            )
        try:
            result = await self._complete_with_retries(
                messages, before_call or self._before_call, gate
            )
        except LLMUnavailable as exc:
            if self.breaker is not None:
                if exc.outage or gate is None:
                    self.breaker.record_failure()
                else:  # a rate limit, a paused budget or a bad answer: no verdict on the provider
                    self.breaker.release()
            raise
        except LLMRejected:
            # The endpoint answered, so it is reachable; a refusal is not an outage.
            if self.breaker is not None:
                self.breaker.record_success()
            raise
        except BaseException:
            if self.breaker is not None:
                self.breaker.release()
            raise
        if self.breaker is not None:
            self.breaker.record_success()
        return result

    async def _complete_with_retries(
        self,
        messages: list[dict[str, str]],
        before_call: BeforeCall | None,
        gate: TenantGate | None,
    ) -> LLMCallResult:
        cfg = self.config
        models = list(cfg.models)
        start = self._clock()
        deadline = start + cfg.deadline_s
        attempts = 0
        model_idx = 0
        fails_on_model = 0
        invalid_outputs = 0
        tried: list[str] = []
        spent: list[AttemptUsage] = []
        last_reason = "no attempt made"
        last_outcome: str | None = None
        estimate = sum(len(m.get("content") or "") for m in messages) // 4 + (cfg.max_tokens or 0)

        def give_up(why: str) -> LLMUnavailable:
            return LLMUnavailable(
                f"{why} after {attempts} attempt(s); last error: {last_reason}",
                attempts=attempts,
                usage=spent,
                outage=last_outcome in OUTAGES,
            )

        while True:
            if before_call is not None:
                await before_call()
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise give_up(f"deadline of {cfg.deadline_s:.0f}s exceeded")
            grant = None
            if gate is not None:
                try:
                    grant = await gate.acquire(estimate, remaining)
                except ProviderPaused as exc:
                    raise LLMPaused(
                        exc.reason, attempts=attempts, usage=spent, outage=False
                    ) from None
                except ProviderBusy as exc:
                    last_outcome = "provider_busy"
                    raise give_up(str(exc)) from None
                remaining = deadline - self._clock()
                if remaining <= 0:
                    await gate.release(grant, outcome="unused")
                    raise give_up(f"deadline of {cfg.deadline_s:.0f}s exceeded")
            attempts += 1
            model = models[model_idx]
            if model not in tried:
                tried.append(model)
            t0 = self._clock()
            try:
                result = await self._attempt(
                    messages, models, model_idx, attempts, min(cfg.timeout_s, remaining)
                )
            except AttemptFailed as failure:
                if failure.usage is not None:
                    spent.append(failure.usage)
                await self._give_back(gate, grant, failure)
                await self._emit(failure.outcome, self._clock() - t0)
                last_reason = f"{model}: {failure.reason}"
                last_outcome = failure.outcome
                log.warning("LLM attempt %d failed: %s", attempts, last_reason)
                if not failure.retryable:
                    raise LLMRejected(
                        failure.reason, failure.status or 0, attempts=attempts, usage=spent
                    ) from None
                if failure.invalid_output:
                    invalid_outputs += 1
                    if invalid_outputs > cfg.max_invalid_output_retries:
                        raise give_up("invalid output") from None
                if attempts >= cfg.max_attempts:
                    raise give_up("retries exhausted") from None
                fails_on_model += 1
                switch = model_idx + 1 < len(models) and fails_on_model >= cfg.attempts_per_model
                delay = self._delay(failure, fails_on_model, switch)
                paced = gate is not None and failure.outcome == "rate_limited"
                remaining = deadline - self._clock()
                if failure.retry_after is not None and (
                    delay > cfg.max_retry_after_s or delay >= remaining
                ):
                    # Waiting less than asked would only earn another 429.
                    raise give_up(f"server asked to wait {delay:.1f}s") from None
                if switch:
                    model_idx += 1
                    fails_on_model = 0
                if delay >= remaining:
                    raise give_up(f"deadline of {cfg.deadline_s:.0f}s exceeded") from None
                if delay > 0 and not paced:  # paced: the budget holds every grant back instead
                    await self._sleep(delay)
                continue
            except BaseException:
                await self._give_back(gate, grant, None)
                raise
            await self._give_back(gate, grant, None, result=result)
            await self._emit("ok", self._clock() - t0)
            spent += result.usage
            result.usage = spent
            result.attempts = attempts
            result.seconds = self._clock() - start
            result.models_tried = tried
            return result

    async def _give_back(
        self,
        gate: TenantGate | None,
        grant: Grant | None,
        failure: AttemptFailed | None,
        *,
        result: LLMCallResult | None = None,
    ) -> None:
        """Return the attempt's grant with what the provider did (a lost grant is taken back
        by the budget after a while, so trouble here never fails the call)."""
        if gate is None or grant is None:
            return
        if result is not None:
            outcome, tokens, retry_after, detail = "ok", _tokens(result.usage), None, None
        elif failure is not None:
            outcome = "no_credits" if failure.status == 402 else failure.outcome
            tokens = _tokens([failure.usage] if failure.usage else [])
            retry_after, detail = failure.retry_after, failure.reason
        else:
            outcome, tokens, retry_after, detail = "cancelled", None, None, None
        try:
            await gate.release(
                grant, outcome=outcome, tokens_used=tokens, retry_after_s=retry_after, detail=detail
            )
        except Exception:  # noqa: BLE001 - the budget takes an unreturned grant back itself
            log.warning("could not return an LLM provider grant", exc_info=True)

    def _delay(self, failure: AttemptFailed, fails_on_model: int, switch: bool) -> float:
        if failure.retry_after is not None:
            return failure.retry_after
        if switch:
            return 0.0  # a different model is not affected by the last one's trouble
        cfg = self.config
        backoff = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (fails_on_model - 1))
        return backoff * (0.75 + 0.25 * self._jitter())

    async def _attempt(
        self,
        messages: list[dict[str, str]],
        models: list[str],
        model_idx: int,
        attempt_no: int,
        timeout_s: float,
    ) -> LLMCallResult:
        """One attempt inside its GenAI client span (``chat <model>``)."""
        cfg = self.config
        with llm_attempt_span(
            cfg.base_url,
            models[model_idx],
            attempt=attempt_no,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
        ) as span:
            try:
                result = await self._call(messages, models, model_idx, attempt_no, timeout_s)
            except AttemptFailed as failure:
                record_failure(
                    span, error_type=failure.outcome, status=failure.status, reason=failure.reason
                )
                raise
            record_result(
                span,
                model=result.model,
                input_tokens=result.prompt_tokens,
                output_tokens=result.completion_tokens,
                response_id=result.generation_id,
            )
            return result

    async def _call(
        self,
        messages: list[dict[str, str]],
        models: list[str],
        model_idx: int,
        attempt_no: int,
        timeout_s: float,
    ) -> LLMCallResult:
        cfg = self.config
        model = models[model_idx]
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "timeout": timeout_s,
            "extra_headers": {"x-stainless-retry-count": str(attempt_no - 1)},
        }
        if cfg.response_format == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        elif cfg.response_format == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "ticket_enhancement",
                    "strict": True,
                    "schema": LLMEnhancement.model_json_schema(),
                },
            }
        if cfg.temperature is not None:
            kwargs["temperature"] = cfg.temperature
        if cfg.max_tokens is not None:
            kwargs["max_tokens"] = cfg.max_tokens
        extra_body: dict[str, Any] = {}
        if cfg.openrouter_fallback and len(models) - model_idx > 1:
            extra_body["models"] = models[model_idx:]
        if cfg.provider:
            extra_body["provider"] = dict(cfg.provider)
        if extra_body:
            kwargs["extra_body"] = extra_body
        try:
            raw = await self._client.chat.completions.with_raw_response.create(**kwargs)
        except openai.APITimeoutError:
            raise AttemptFailed("timeout", f"no response within {timeout_s:.1f}s") from None
        except openai.APIConnectionError as exc:
            raise AttemptFailed("connection_error", f"connection failed: {exc}") from None
        except openai.APIStatusError as exc:
            raise classify_status(exc) from None
        except openai.OpenAIError as exc:  # anything else the SDK raises is still LLM trouble
            raise AttemptFailed("error_body", f"client error: {type(exc).__name__}") from None
        try:
            body = json.loads(raw.text)
        except ValueError:
            raise AttemptFailed("error_body", "response body is not JSON") from None
        return parse_body(body, raw.headers, model)

    async def _emit(self, outcome: str, seconds: float) -> None:
        if self._on_call is None:
            return
        try:
            maybe = self._on_call(outcome, seconds)
            if inspect.isawaitable(maybe):
                await maybe
        except Exception:  # metrics must never break the call path
            log.exception("on_call hook failed")


def _tokens(usage: Sequence[AttemptUsage]) -> int | None:
    if not usage:
        return None
    return sum(u.prompt_tokens + u.completion_tokens for u in usage)

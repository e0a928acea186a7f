"""Calls an OpenAI-compatible chat endpoint (OpenRouter by default) and returns a validated
:class:`LLMEnhancement`.

The ``openai`` client runs with ``max_retries=0`` because its own retry policy is not ours: it
waits up to 120 s on a ``Retry-After``, knows nothing about our deadline, cannot fall back to
another model, never retries a 200 response whose body carries an ``error``, and its retries
are invisible to metrics. Here every attempt is counted, reported to ``on_call`` and bounded by
both ``max_attempts`` and an overall deadline. 400/401/402/403 are never retried: they will not
get better by asking again (402 means the key is out of credits).

Each attempt sends ``x-stainless-retry-count`` with our own attempt number, so a server (or the
simulator) sees the same retry count it would from the stock client. Reading and classifying
what came back lives in :mod:`pipeline.llm.contract`.

Every attempt is one client span with OpenTelemetry's GenAI semantic-convention attributes
(``gen_ai.*``), so a tracing backend's LLM views (model, token usage, errors per attempt) work
on our traces; ``gen_ai.system`` names the provider from the endpoint's host (``openrouter``,
else ``openai``). The prompt and completion text are never recorded: they carry ticket contents.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import openai
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from pipeline.llm.circuit_breaker import CircuitBreaker
from pipeline.llm.contract import AttemptFailed, LLMCallResult, classify_status, parse_body
from pipeline.models import LLMEnhancement
from pipeline.observability.tracing import tracer

log = logging.getLogger(__name__)

BeforeCall = Callable[[], Awaitable[None]]
OnCall = Callable[[str, float], Awaitable[None] | None]
ResponseFormat = Literal["json_object", "json_schema", "none"]

# Outcome labels given to on_call (and used as the metrics "outcome" label).
OUTCOMES = (
    "ok",
    "rate_limited",
    "server_error",
    "timeout",
    "connection_error",
    "error_body",
    "invalid_output",
    "rejected",
    "circuit_open",
)


class LLMError(Exception):
    def __init__(self, reason: str, *, attempts: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts  # requests actually sent, for the enhancement record


class LLMUnavailable(LLMError):
    """The LLM could not produce a usable answer in time: retries exhausted, deadline passed,
    breaker open or output invalid. Falling back to a context-only note is the right answer."""


class LLMRejected(LLMError):
    """The endpoint refused the request (400/401/402/403…); retrying would not help."""

    def __init__(self, reason: str, status: int, *, attempts: int = 0) -> None:
        super().__init__(reason, attempts=attempts)
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
        self, messages: list[dict[str, str]], *, before_call: BeforeCall | None = None
    ) -> LLMCallResult:
        """Return a validated enhancement or raise LLMUnavailable / LLMRejected."""
        if self.breaker is not None and not self.breaker.allow():
            await self._emit("circuit_open", 0.0)
            raise LLMUnavailable(
                f"circuit breaker open; next probe in {self.breaker.retry_in_s():.0f}s"
            )
        try:
            result = await self._complete_with_retries(messages, before_call or self._before_call)
        except LLMUnavailable:
            if self.breaker is not None:
                self.breaker.record_failure()
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
        self, messages: list[dict[str, str]], before_call: BeforeCall | None
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
        last_reason = "no attempt made"

        def give_up(why: str) -> LLMUnavailable:
            return LLMUnavailable(
                f"{why} after {attempts} attempt(s); last error: {last_reason}", attempts=attempts
            )

        while True:
            if before_call is not None:
                await before_call()
            remaining = deadline - self._clock()
            if remaining <= 0:
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
                await self._emit(failure.outcome, self._clock() - t0)
                last_reason = f"{model}: {failure.reason}"
                log.warning("LLM attempt %d failed: %s", attempts, last_reason)
                if not failure.retryable:
                    raise LLMRejected(
                        failure.reason, failure.status or 0, attempts=attempts
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
                if delay > 0:
                    await self._sleep(delay)
                continue
            await self._emit("ok", self._clock() - t0)
            result.attempts = attempts
            result.seconds = self._clock() - start
            result.models_tried = tried
            return result

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
                record_failure(span, failure)
                raise
            record_result(span, result)
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


def genai_system(base_url: str) -> str:
    host = urlsplit(base_url).hostname or ""
    return "openrouter" if host == "openrouter.ai" or host.endswith(".openrouter.ai") else "openai"


@contextmanager
def llm_attempt_span(
    base_url: str, model: str, *, attempt: int, temperature: float | None, max_tokens: int | None
) -> Iterator[Span]:
    """``chat <model>`` around one attempt; the caller records the outcome with
    :func:`record_result` or :func:`record_failure`."""
    parts = urlsplit(base_url)
    system = genai_system(base_url)
    attributes: dict[str, str | int | float] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": system,
        "gen_ai.provider.name": system,
        "gen_ai.request.model": model,
        "gen_ai.output.type": "json",
        "llm.attempt": attempt,
    }
    if parts.hostname:
        attributes["server.address"] = parts.hostname
        attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    if temperature is not None:
        attributes["gen_ai.request.temperature"] = temperature
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    with tracer().start_as_current_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def record_result(span: Span, result: LLMCallResult) -> None:
    span.set_attribute("gen_ai.response.model", result.model)
    span.set_attribute("gen_ai.usage.input_tokens", result.prompt_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", result.completion_tokens)
    if result.generation_id:
        span.set_attribute("gen_ai.response.id", result.generation_id)


def record_failure(span: Span, failure: AttemptFailed) -> None:
    span.set_attribute("error.type", failure.outcome)
    if failure.status:
        span.set_attribute("http.response.status_code", failure.status)
    span.set_status(Status(StatusCode.ERROR, failure.reason[:200]))

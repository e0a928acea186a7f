"""One LLM attempt as an OpenTelemetry client span with the GenAI semantic conventions (what
the LLM client records; plain values in, so this tracing code knows nothing of the pipeline).

Every attempt is a ``chat <model>`` client span carrying ``gen_ai.*`` attributes, so a tracing
backend's LLM views (model, token usage, errors per attempt) work on our traces;
``gen_ai.system`` names the provider from the endpoint's host (``openrouter``, else ``openai``).
The prompt and completion text are never recorded: they carry ticket contents.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from pipeline.observability.tracing import tracer


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


def record_result(
    span: Span,
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    response_id: str | None,
) -> None:
    span.set_attribute("gen_ai.response.model", model)
    span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    if response_id:
        span.set_attribute("gen_ai.response.id", response_id)


def record_failure(span: Span, *, error_type: str, status: int | None, reason: str) -> None:
    span.set_attribute("error.type", error_type)
    if status:
        span.set_attribute("http.response.status_code", status)
    span.set_status(Status(StatusCode.ERROR, reason[:200]))

"""Reads what an OpenAI-compatible endpoint answered and classifies every way it can fail.

Kept apart from the retry loop in :mod:`pipeline.llm.client` because the two change for
different reasons: this side follows the provider's wire format (error bodies inside a 200,
OpenRouter's ``metadata.limit_source`` on a 402, fenced JSON from chatty models), the client
follows our retry and deadline policy. Each failure becomes an :class:`AttemptFailed` that
says whether asking again can help, so the client never has to look at a body itself.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import openai
from pydantic import ValidationError

from pipeline.models import LLMEnhancement

_NOT_RETRYABLE_REASONS = {
    400: "bad request",
    401: "authentication failed (invalid or disabled API key)",
    402: "insufficient credits",
    403: "refused (moderation or permission)",
    404: "not found (unknown model or endpoint)",
    413: "request too large",
    422: "unprocessable request",
}
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*(.*?)\s*```\s*$", re.DOTALL)


@dataclass
class LLMCallResult:
    enhancement: LLMEnhancement
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 1
    generation_id: str | None = None
    provider: str | None = None
    seconds: float = 0.0
    models_tried: list[str] = field(default_factory=list)
    raw_content: str = ""  # the model's answer as received, kept for `ai-agents explain`


class AttemptFailed(Exception):
    """One attempt's failure, classified for the retry loop."""

    def __init__(
        self,
        outcome: str,
        reason: str,
        *,
        retryable: bool = True,
        status: int | None = None,
        retry_after: float | None = None,
        invalid_output: bool = False,
    ) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.invalid_output = invalid_output


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, then ``Retry-After`` (seconds or
    an HTTP date). None when absent or unreadable."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            if name == "retry-after":
                parsed = email.utils.parsedate_tz(value)
                if parsed is not None:
                    return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def parse_enhancement(content: str) -> LLMEnhancement:
    """Parse the model's text into the contract; tolerate a ```json fence or stray prose."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except ValueError:
            data = None
        if data is None:
            raise ValueError("content is not JSON") from None
    try:
        return LLMEnhancement.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()[:3]
        )
        raise ValueError(f"content does not match the schema ({problems})") from None


def _error_message(body: object) -> str:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            msg = inner.get("message")
            if msg:
                return str(msg)[:200]
    return ""


def classify_status(exc: openai.APIStatusError) -> AttemptFailed:
    status = exc.status_code
    message = _error_message(exc.body)
    headers = dict(exc.response.headers)
    detail = f"HTTP {status}" + (f": {message}" if message else "")
    if status == 402:
        meta = exc.body.get("metadata") if isinstance(exc.body, Mapping) else None
        source = meta.get("limit_source") if isinstance(meta, Mapping) else None
        reason = "insufficient credits" + (f" ({source})" if source else "") + f" — {detail}"
        return AttemptFailed("rejected", reason, retryable=False, status=status)
    if status in (408, 409) or status >= 500 or status == 429:
        outcome = (
            "rate_limited" if status == 429 else ("timeout" if status == 408 else "server_error")
        )
        return AttemptFailed(outcome, detail, status=status, retry_after=parse_retry_after(headers))
    reason = _NOT_RETRYABLE_REASONS.get(status, "rejected")
    return AttemptFailed("rejected", f"{reason} — {detail}", retryable=False, status=status)


def parse_body(body: Any, headers: Mapping[str, str], model: str) -> LLMCallResult:
    """A 200 can still be a failure: an ``error`` object, ``finish_reason: error``, no
    choices or empty content (OpenRouter's "no content generated")."""
    if not isinstance(body, dict):
        raise AttemptFailed("error_body", "response body is not an object")
    choices = body.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    error = body.get("error") or first.get("error")
    if error:
        code = error.get("code") if isinstance(error, dict) else None
        detail = f"error in 200 body: {_error_message({'error': error}) or error}"
        if code in (401, 402, 403):
            raise AttemptFailed("rejected", detail, retryable=False, status=int(code))
        raise AttemptFailed("error_body", detail)
    if not first:
        raise AttemptFailed("error_body", "response has no choices")
    finish = first.get("finish_reason")
    if finish == "error":
        raise AttemptFailed("error_body", "finish_reason is 'error'")
    content = (first.get("message") or {}).get("content")
    if not isinstance(content, str) or not content.strip():
        raise AttemptFailed("error_body", "empty content (no content generated)")
    try:
        enhancement = parse_enhancement(content)
    except ValueError as exc:
        reason = f"invalid output: {exc}"
        if finish == "length":
            reason += " (truncated: finish_reason=length)"
        raise AttemptFailed("invalid_output", reason, invalid_output=True) from None
    usage = body.get("usage") or {}
    return LLMCallResult(
        enhancement=enhancement,
        model=str(body.get("model") or model),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cost_usd=float(usage.get("cost") or 0.0),
        generation_id=headers.get("x-generation-id") or body.get("id"),
        provider=body.get("provider"),
        raw_content=content,
    )

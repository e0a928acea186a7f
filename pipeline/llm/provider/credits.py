"""What the provider key has left to spend, read from the provider before it runs out.

OpenRouter's ``GET /api/v1/key`` (with the same bearer key as the completions) answers
``{"data": {"label", "limit", "limit_remaining", "limit_reset", "usage", "usage_daily",
"usage_weekly", "usage_monthly", ..., "is_free_tier"}}``: ``limit`` is the key's spending limit
in USD (credits are USD) or null for a key without one, ``limit_remaining`` what is left of it
(null likewise), ``usage`` what the key spent so far. The :class:`CreditPoller` reads it every
``AI_AGENTS_LLM_CREDIT_POLL_S`` seconds, hands the remaining credit to the shared provider budget
(nothing left: every tenant's notes turn context-only at once, with the reason) and to a gauge
(``ai_agents_llm_credit_remaining_usd``; the ``LLMCreditsLow`` alert fires below
``AI_AGENTS_LLM_CREDIT_LOW_USD``). A key without a limit has no remaining credit to read, so give
the key a limit in OpenRouter (Settings → API keys) for the gauge to mean something. An endpoint
without a key endpoint (404: not OpenRouter) is noted once and no longer polled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class KeyCredit:
    limit_usd: float | None
    remaining_usd: float | None
    usage_usd: float | None
    is_free_tier: bool = False


class CreditUnavailable(Exception):
    """The provider did not say (unreachable, refused, not an OpenRouter key endpoint)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_key_info(body: Any) -> KeyCredit:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise CreditUnavailable("the key endpoint answered without a 'data' object")
    return KeyCredit(
        limit_usd=_number(data.get("limit")),
        remaining_usd=_number(data.get("limit_remaining")),
        usage_usd=_number(data.get("usage")),
        is_free_tier=data.get("is_free_tier") is True,
    )


async def read_key_credit(
    http: httpx.AsyncClient, base_url: str, api_key: str, *, timeout_s: float = 10.0
) -> KeyCredit:
    """``GET {base_url}/key`` with the key; the body is read up to 64 KiB."""
    url = base_url.rstrip("/") + "/key"
    try:
        async with http.stream(
            "GET", url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s
        ) as response:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise CreditUnavailable("the key endpoint's answer is too large")
    except httpx.HTTPError as exc:
        raise CreditUnavailable(f"key endpoint unreachable: {type(exc).__name__}") from None
    if response.status_code == 404:
        raise CreditUnavailable("the LLM endpoint has no key endpoint (404)", permanent=True)
    if response.status_code != 200:
        raise CreditUnavailable(f"key endpoint answered HTTP {response.status_code}")
    try:
        return parse_key_info(json.loads(body))
    except ValueError:
        raise CreditUnavailable("the key endpoint's answer is not JSON") from None


class CreditPoller:
    """Reads the key's credit every ``interval_s`` and reports each reading; never raises."""

    def __init__(
        self,
        read: Callable[[], Awaitable[KeyCredit]],
        on_reading: Callable[[KeyCredit], None],
        *,
        interval_s: float,
    ) -> None:
        self._read = read
        self._on_reading = on_reading
        self.interval_s = interval_s
        self.last: KeyCredit | None = None
        self.stopped_because: str | None = None

    async def poll_once(self) -> KeyCredit | None:
        try:
            reading = await self._read()
        except CreditUnavailable as exc:
            if exc.permanent:
                self.stopped_because = str(exc)
                log.info("not polling the LLM key's credit: %s", exc)
            else:
                log.warning("could not read the LLM key's credit: %s", exc)
            return None
        self.last = reading
        try:
            self._on_reading(reading)
        except Exception:  # a gauge or the budget must never stop the poller
            log.exception("credit reading callback failed")
        return reading

    async def run(self) -> None:
        """Until cancelled, or until the endpoint turns out to have no key endpoint."""
        while self.stopped_because is None:
            await self.poll_once()
            await asyncio.sleep(self.interval_s)

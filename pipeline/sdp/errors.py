"""How an SDP v3 answer becomes either a body or a typed error the pipeline can act on.

SDP reports failure in more than one place: the HTTP status, a `response_status` that is an
object or an array, and an inner `messages[].status_code` — and a failed envelope can arrive
with HTTP 200 (`"status": "failed"` inside `response_status`). Each class here names one
decision: retry later
(`SdpRateLimited`, `SdpUnavailable`), fail the job with SDP's own words (`SdpRejected`,
`SdpNotFound`), or flag the tenant's credentials (`SdpAuthError`). Kept apart from the client
because this follows SDP's error conventions, while the client follows our transport and retry
policy; code that only decides what a failure means imports this module alone.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx


class SdpError(Exception):
    """A failed SDP call. `retryable` says whether trying again later can help."""

    outcome = "error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        http_status: int | None = None,
        sdp_code: int | None = None,
        retryable: bool | None = None,
        *,
        fields: tuple[str, ...] = (),
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.sdp_code = sdp_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.fields = fields
        self.retry_after = retry_after
        # True when a write may have been applied although the call failed (timeout, 5xx).
        self.maybe_applied = maybe_applied

    def scrub(self, secret: str) -> None:
        """Remove a secret that SDP or a proxy might have echoed into the message."""
        if secret and secret in self.message:
            self.message = self.message.replace(secret, "***")
            self.args = (self.message,)

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.http_status}, SDP code {self.sdp_code})"


class SdpAuthError(SdpError):
    """401/4022: the tenant's key is wrong, expired or disabled; an operator must act."""

    outcome = "auth_error"


class SdpNotFound(SdpError):
    """404/4007: the ticket (or URL) does not exist, or is in the trash."""

    outcome = "not_found"


class SdpRejected(SdpError):
    """SDP refused the call for a business reason (including HTTP 200 failed envelopes)."""

    outcome = "rejected"


class SdpRateLimited(SdpError):
    """429/4015: throttled; `retry_after` carries SDP's Retry-After in seconds when sent."""

    outcome = "rate_limited"
    default_retryable = True


class SdpUnavailable(SdpError):
    """5xx, timeouts and connection failures: SDP (or the path to it) is down."""

    outcome = "unavailable"
    default_retryable = True


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse `Retry-After` as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _failure(body: Any) -> tuple[str, int | None, tuple[str, ...]] | None:
    """(message, code, fields) of the first failed `response_status`, object or array."""
    status = body.get("response_status") if isinstance(body, dict) else None
    entries = [status] if isinstance(status, dict) else list(status or [])
    for entry in (e for e in entries if isinstance(e, dict)):
        code = entry.get("status_code")
        outer = int(str(code)) if str(code).isdigit() else None
        if (outer or 0) < 4000 and str(entry.get("status", "")).lower() != "failed":
            continue
        first = next((m for m in entry.get("messages") or [] if isinstance(m, dict)), {})
        inner = int(first["status_code"]) if str(first.get("status_code")).isdigit() else outer
        fields = tuple(first.get("fields") or ([first["field"]] if first.get("field") else []))
        text = first.get("message") or (
            f"mandatory field(s) missing: {', '.join(fields)}"
            if fields
            else f"SDP call failed (code {inner})"
        )
        return str(text), inner, fields
    return None


def raise_for_envelope(response: httpx.Response, *, write: bool) -> dict[str, Any]:
    """Return the body of a successful call; raise the typed error for anything else."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    failure = _failure(body)
    if 200 <= status < 300 and failure is None:
        if not isinstance(body, dict):
            raise SdpError(f"SDP answered HTTP {status} without a JSON object", status)
        return body
    message, code, fields = failure or (f"HTTP {status} {response.reason_phrase}".strip(), None, ())
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if status == 429 or code == 4015:
        raise SdpRateLimited(message, status, code, retry_after=retry_after)
    if status == 401 or code == 4022:
        raise SdpAuthError(message, status, code)
    if status == 404 or code == 4007:
        raise SdpNotFound(message, status, code)
    if status >= 500 or status == 408 or code == 4004:
        raise SdpUnavailable(
            message, status, code, retry_after=retry_after, maybe_applied=write and status != 503
        )
    raise SdpRejected(message, status, code, fields=fields)

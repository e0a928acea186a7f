"""ServiceDesk Plus on the wire: what its request objects and webhooks mean as our tickets, and
what its answers mean as a body or a typed error.

Webhooks (``{"request": {...}}``), SDP fetches (``GET /requests/{id}``) and the history import
(list pages) all receive the same request object; if each mapped it its own way, live tickets
and the history they are matched against would be normalised differently (HTML kept in one,
dropped in the other), and matching would suffer. Text fields go through :func:`html_to_text`
here, once. A webhook is either SDP's own ``{"request": {...}}`` (a custom action or
``$COMPLETE_V3_JSON_FILE``) or a flat shape a hand-written template produces; both become one
:class:`TicketWebhook` here.

``strict=True`` (webhooks) refuses a value of the wrong type with :class:`SdpFieldError` naming
the field, so a tenant's admin can fix their template from the 422 alone; ``strict=False``
(imports, fetches from SDP itself) drops such a value instead of failing the whole batch.

SDP reports failure in more than one place: the HTTP status, a ``response_status`` that is an
object or an array, and an inner ``messages[].status_code`` — and a failed envelope can arrive
with HTTP 200. Each error class names one decision: retry later (``SdpRateLimited``,
``SdpUnavailable``), fail the job with SDP's own words (``SdpRejected``, ``SdpNotFound``), or
flag the tenant's credentials (``SdpAuthError``). The client (``pipeline.sdp.client``) follows our
transport and retry policy; this module follows SDP's conventions.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel

from pipeline.models import Ticket
from pipeline.text.ticket_text import html_to_text

MAX_TEXT = 100_000
_TAG_FIELDS = ("category", "subcategory", "item")
MAX_TAGS = 20
_TICKET_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_EVENT = re.compile(r"^[a-z0-9_.-]{1,40}$")


class SdpFieldError(ValueError):
    """A field of the request object that cannot be read; ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SdpRequest:
    """Everything any caller needs from one request object, already normalised."""

    ticket_id: str
    subject: str
    description: str
    resolution: str
    priority: str | None
    status: str | None
    requester_name: str | None
    requester_email: str | None
    updated_at: datetime | None
    resolved_at: datetime | None
    tags: list[str] = field(default_factory=list)
    has_description: bool = False

    @property
    def ticket(self) -> Ticket:
        return Ticket(
            ticket_id=self.ticket_id,
            subject=self.subject,
            description=self.description,
            priority=self.priority,
            status=self.status,
            requester_name=self.requester_name,
            requester_email=self.requester_email,
            updated_at=self.updated_at,
            tags=self.tags,
        )


def read_text(obj: Mapping[str, Any], key: str, field: str, *, strict: bool) -> str | None:
    """A string field; SDP wraps many as ``{"name"|"content"|"value": ...}``."""
    value = obj.get(key)
    if isinstance(value, Mapping):
        value = value.get("name", value.get("content", value.get("value")))
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        if strict:
            raise SdpFieldError(field, "must be a string")
        return None
    if len(value) > MAX_TEXT:
        if strict:
            raise SdpFieldError(field, f"longer than {MAX_TEXT} characters")
        value = value[:MAX_TEXT]
    return value


def read_time(value: Any, field: str, *, strict: bool) -> datetime | None:
    """SDP sends ``{"value": "<ms epoch>"}``; templates ISO 8601 or epoch seconds/ms."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if value in (None, ""):
        return None
    try:
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            or (isinstance(value, str) and value.isdigit())
        ):
            number = float(value)
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    if strict:
        raise SdpFieldError(field, "not a timestamp (ISO 8601, epoch seconds or SDP {value: ms})")
    return None


def read_tags(request: Mapping[str, Any], field: str, *, strict: bool) -> list[str]:
    """Category, subcategory and item names (SDP's own classification), then any tags."""
    names: list[Any] = [request.get(key) for key in _TAG_FIELDS]
    extra = request.get("tags")
    if isinstance(extra, str):
        extra = [extra]
    if isinstance(extra, list):
        names.extend(extra)
    elif extra is not None and strict:
        raise SdpFieldError(field, "must be a list of strings")
    out: list[str] = []
    for tag in names:
        if isinstance(tag, Mapping):
            tag = tag.get("name")
        text = tag.strip()[:64] if isinstance(tag, str) else ""
        if text and text.lower() not in (t.lower() for t in out):
            out.append(text)
    return out[:MAX_TAGS]


def map_sdp_request(
    request: Mapping[str, Any],
    *,
    ticket_id: str | None = None,
    strict: bool = False,
    prefix: str = "request.",
) -> SdpRequest:
    """SDP's v3 request object → :class:`SdpRequest` (text fields as plain text)."""

    def text(key: str, source: Mapping[str, Any] = request, path: str = "") -> str | None:
        return read_text(source, key, prefix + (path or key), strict=strict)

    requester = request.get("requester")
    requester = requester if isinstance(requester, Mapping) else {}
    description = text("description")
    resolution = text("resolution")
    return SdpRequest(
        ticket_id=ticket_id if ticket_id is not None else str(request.get("id")),
        subject=(text("subject") or "").strip(),
        description=html_to_text(description),
        resolution=html_to_text(resolution),
        priority=_clean(text("priority")),
        status=_clean(text("status")),
        requester_name=text("name", requester, "requester.name"),
        requester_email=text("email_id", requester, "requester.email_id"),
        updated_at=read_time(
            request.get("last_updated_time"), prefix + "last_updated_time", strict=strict
        ),
        resolved_at=(
            read_time(request.get("resolved_time"), prefix + "resolved_time", strict=strict)
            or read_time(request.get("completed_time"), prefix + "completed_time", strict=strict)
        ),
        tags=read_tags(request, prefix + "tags", strict=strict),
        has_description=bool(description and description.strip()),
    )


def _clean(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


RESOLVED_EVENTS = frozenset({"resolved", "closed"})


class TicketWebhook(BaseModel):
    ticket: Ticket
    event: str
    version: str
    has_description: bool
    resolution: str | None = None
    resolved_at: datetime | None = None
    tags: list[str] = []

    def resolved_by(self) -> str | None:
        """The field that makes this a resolved-ticket delivery (an event ``resolved`` or
        ``closed``, a resolution, a resolution time), or None for a new or updated ticket.
        The new-ticket route refuses what this names and the resolved route requires a
        resolution, so no body is accepted on both: a signature over the body binds it to
        one route."""
        if self.event in RESOLVED_EVENTS:
            return "event"
        if self.resolution:
            return "resolution"
        if self.resolved_at is not None:
            return "resolved_at"
        return None

    def dedupe_key(self) -> str:
        raw = f"{self.ticket.ticket_id}\x1f{self.event}\x1f{self.version}"
        return hashlib.sha256(raw.encode()).hexdigest()


def _ticket_id(value: Any, field: str) -> str:
    if isinstance(value, bool) or value is None or value == "":
        raise SdpFieldError(field, "ticket id is required")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _TICKET_ID.fullmatch(value):
        raise SdpFieldError(field, "must be 1-64 letters, digits or _.:-")
    return value


def parse_ticket_webhook(data: Any, raw_body: bytes) -> TicketWebhook:
    if not isinstance(data, dict):
        raise SdpFieldError("body", "must be a JSON object")
    event = data.get("event", "created")
    if not isinstance(event, str) or not _EVENT.fullmatch(event):
        raise SdpFieldError("event", "must be a short lowercase word such as 'created'")

    if "request" in data:
        req = data["request"]
        if not isinstance(req, dict):
            raise SdpFieldError("request", "must be an object")
        ticket_id = _ticket_id(req.get("id"), "request.id")
        mapped = map_sdp_request(req, ticket_id=ticket_id, strict=True)
        updated = mapped.updated_at
        ticket = mapped.ticket
        resolution = mapped.resolution or None
        resolved_at = mapped.resolved_at
        has_description = mapped.has_description
        tags_source = mapped.tags
    else:
        ticket_id = _ticket_id(data.get("ticket_id"), "ticket_id")
        updated = read_time(data.get("updated_at"), "updated_at", strict=True)
        ticket = Ticket(
            ticket_id=ticket_id,
            subject=read_text(data, "subject", "subject", strict=True) or "",
            description=html_to_text(read_text(data, "description", "description", strict=True)),
            priority=read_text(data, "priority", "priority", strict=True),
            status=read_text(data, "status", "status", strict=True),
            requester_name=read_text(data, "requester", "requester", strict=True),
            requester_email=read_text(data, "requester_email", "requester_email", strict=True),
            updated_at=updated,
        )
        resolution = html_to_text(read_text(data, "resolution", "resolution", strict=True)) or None
        resolved_at = read_time(data.get("resolved_at"), "resolved_at", strict=True)
        has_description = bool(data.get("description"))
        tags_source = data.get("tags") or ([data["category"]] if data.get("category") else [])

    tags = _tags(tags_source)
    ticket = ticket.model_copy(update={"tags": tags})
    version = (
        updated.isoformat() if updated else "body:" + hashlib.sha256(raw_body).hexdigest()[:32]
    )
    return TicketWebhook(
        ticket=ticket,
        event=event,
        version=version,
        has_description=has_description,
        resolution=resolution,
        resolved_at=resolved_at,
        tags=tags,
    )


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise SdpFieldError("tags", "must be a list of strings")
    out = []
    for item in value[:20]:
        if isinstance(item, dict):
            item = item.get("name")
        if isinstance(item, str) and item.strip():
            out.append(item.strip()[:64])
    return out


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

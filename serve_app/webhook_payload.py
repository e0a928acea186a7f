"""Normalise the two webhook shapes SDP can send (DESIGN §4.3) into one model.

SDP's own ``{"request": {...}}`` (custom action / ``$COMPLETE_V3_JSON_FILE``) and a flat shape
that a hand-written payload template produces. Errors name the offending field so a tenant's
admin can fix their webhook template from the 422 alone.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from pipeline.models import Ticket

_TICKET_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_EVENT = re.compile(r"^[a-z0-9_.-]{1,40}$")
MAX_TEXT = 100_000


class PayloadError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class TicketWebhook(BaseModel):
    ticket: Ticket
    event: str
    version: str
    has_description: bool
    resolution: str | None = None
    resolved_at: datetime | None = None
    tags: list[str] = []

    def dedupe_key(self) -> str:
        raw = f"{self.ticket.ticket_id}\x1f{self.event}\x1f{self.version}"
        return hashlib.sha256(raw.encode()).hexdigest()


def _text(obj: dict[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, dict):  # {"name": ...} / {"content": ...} / {"value": ...}
        value = value.get("name", value.get("content", value.get("value")))
        if value is None:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise PayloadError(field, "must be a string")
    if len(value) > MAX_TEXT:
        raise PayloadError(field, f"longer than {MAX_TEXT} characters")
    return value


def _ticket_id(value: Any, field: str) -> str:
    if isinstance(value, bool) or value is None or value == "":
        raise PayloadError(field, "ticket id is required")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _TICKET_ID.match(value):
        raise PayloadError(field, "must be 1-64 letters, digits or _.:-")
    return value


def _time(value: Any, field: str) -> datetime | None:
    """SDP sends ``{"value": "<ms epoch>"}``; flat payloads ISO 8601 or epoch seconds/ms."""
    if isinstance(value, dict):
        value = value.get("value")
    if value in (None, ""):
        return None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
            number = float(value)
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise PayloadError(field, "not a timestamp (ISO 8601, epoch seconds or SDP {value: ms})")


def parse_ticket_webhook(data: Any, raw_body: bytes) -> TicketWebhook:
    if not isinstance(data, dict):
        raise PayloadError("body", "must be a JSON object")
    event = data.get("event", "created")
    if not isinstance(event, str) or not _EVENT.match(event):
        raise PayloadError("event", "must be a short lowercase word such as 'created'")

    if "request" in data:
        req = data["request"]
        if not isinstance(req, dict):
            raise PayloadError("request", "must be an object")
        prefix = "request."
        ticket_id = _ticket_id(req.get("id"), "request.id")
        requester = req.get("requester") if isinstance(req.get("requester"), dict) else {}
        updated = _time(req.get("last_updated_time"), "request.last_updated_time")
        ticket = Ticket(
            ticket_id=ticket_id,
            subject=_text(req, "subject", prefix + "subject") or "",
            description=_text(req, "description", prefix + "description") or "",
            priority=_text(req, "priority", prefix + "priority"),
            status=_text(req, "status", prefix + "status"),
            requester_name=_text(requester, "name", prefix + "requester.name"),
            requester_email=_text(requester, "email_id", prefix + "requester.email_id"),
            updated_at=updated,
        )
        resolution = _text(req, "resolution", prefix + "resolution")
        resolved_at = _time(req.get("resolved_time"), prefix + "resolved_time")
        has_description = bool(req.get("description"))
        tags_source = req.get("tags") or ([req["category"]] if req.get("category") else [])
    else:
        ticket_id = _ticket_id(data.get("ticket_id"), "ticket_id")
        updated = _time(data.get("updated_at"), "updated_at")
        ticket = Ticket(
            ticket_id=ticket_id,
            subject=_text(data, "subject", "subject") or "",
            description=_text(data, "description", "description") or "",
            priority=_text(data, "priority", "priority"),
            status=_text(data, "status", "status"),
            requester_name=_text(data, "requester", "requester"),
            requester_email=_text(data, "requester_email", "requester_email"),
            updated_at=updated,
        )
        resolution = _text(data, "resolution", "resolution")
        resolved_at = _time(data.get("resolved_at"), "resolved_at")
        has_description = bool(data.get("description"))
        tags_source = data.get("tags") or ([data["category"]] if data.get("category") else [])

    tags = _tags(tags_source)
    version = (updated.isoformat() if updated
               else "body:" + hashlib.sha256(raw_body).hexdigest()[:32])
    return TicketWebhook(ticket=ticket, event=event, version=version,
                         has_description=has_description, resolution=resolution,
                         resolved_at=resolved_at, tags=tags)


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise PayloadError("tags", "must be a list of strings")
    out = []
    for item in value[:20]:
        if isinstance(item, dict):
            item = item.get("name")
        if isinstance(item, str) and item.strip():
            out.append(item.strip()[:64])
    return out

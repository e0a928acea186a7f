"""Normalise the two webhook shapes SDP can send into one model.

SDP's own ``{"request": {...}}`` (custom action / ``$COMPLETE_V3_JSON_FILE``) and a flat shape
that a hand-written payload template produces. SDP's own shape goes through the same mapper
as SDP fetches and the history import, and every description and resolution through the same
HTML → text function, so a live ticket is normalised exactly like the history it is matched
against. Errors name the offending field so a tenant's
admin can fix their webhook template from the 422 alone.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from pipeline.models import Ticket
from pipeline.sdp.ticket import SdpFieldError, map_sdp_request, read_text, read_time
from pipeline.text.html_text import html_to_text

_TICKET_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_EVENT = re.compile(r"^[a-z0-9_.-]{1,40}$")


class PayloadError(SdpFieldError):
    """A webhook field that cannot be used; ``field`` names it for the 422."""


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
    try:
        return read_text(obj, key, field, strict=True)
    except SdpFieldError as err:
        raise PayloadError(err.field, err.message) from err


def _ticket_id(value: Any, field: str) -> str:
    if isinstance(value, bool) or value is None or value == "":
        raise PayloadError(field, "ticket id is required")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not _TICKET_ID.match(value):
        raise PayloadError(field, "must be 1-64 letters, digits or _.:-")
    return value


def _time(value: Any, field: str) -> datetime | None:
    try:
        return read_time(value, field, strict=True)
    except SdpFieldError as err:
        raise PayloadError(err.field, err.message) from err


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
        ticket_id = _ticket_id(req.get("id"), "request.id")
        try:  # the same mapper as SDP fetches and the history import
            mapped = map_sdp_request(req, ticket_id=ticket_id, strict=True)
        except SdpFieldError as err:
            raise PayloadError(err.field, err.message) from err
        updated = mapped.updated_at
        ticket = mapped.ticket
        resolution = mapped.resolution or None
        resolved_at = mapped.resolved_at
        has_description = mapped.has_description
        tags_source = mapped.tags
    else:
        ticket_id = _ticket_id(data.get("ticket_id"), "ticket_id")
        updated = _time(data.get("updated_at"), "updated_at")
        ticket = Ticket(
            ticket_id=ticket_id,
            subject=_text(data, "subject", "subject") or "",
            description=html_to_text(_text(data, "description", "description")),
            priority=_text(data, "priority", "priority"),
            status=_text(data, "status", "status"),
            requester_name=_text(data, "requester", "requester"),
            requester_email=_text(data, "requester_email", "requester_email"),
            updated_at=updated,
        )
        resolution = html_to_text(_text(data, "resolution", "resolution")) or None
        resolved_at = _time(data.get("resolved_at"), "resolved_at")
        has_description = bool(data.get("description"))
        tags_source = data.get("tags") or ([data["category"]] if data.get("category") else [])

    tags = _tags(tags_source)
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
        raise PayloadError("tags", "must be a list of strings")
    out = []
    for item in value[:20]:
        if isinstance(item, dict):
            item = item.get("name")
        if isinstance(item, str) and item.strip():
            out.append(item.strip()[:64])
    return out

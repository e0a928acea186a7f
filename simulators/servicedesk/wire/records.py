"""Building ServiceDesk Plus v3 request objects the way a real instance returns them.

Seed data arrives in many shapes (demo fixtures, control-API JSON, test kwargs). Normalising it
here means every request the simulator serves has SDP's real quirks — string ids, times as
`{value: "<ms>", display_value}`, lookups as `{id, name}` — so a client that only works with
tidy data (integer ids, ISO dates, plain strings) fails against the simulator as it would in
production.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TIME_FIELDS = (
    "created_time",
    "last_updated_time",
    "due_by_time",
    "resolved_time",
    "completed_time",
    "first_response_due_by_time",
    "responded_time",
    "assigned_time",
)

# Lookup fields that SDP renders as `{id, name}` objects (or null).
LOOKUP_FIELDS = (
    "site",
    "category",
    "subcategory",
    "item",
    "mode",
    "request_type",
    "impact",
    "urgency",
    "level",
    "template",
)

STATUSES: dict[str, dict[str, Any]] = {
    "open": {
        "name": "Open",
        "internal_name": "Open",
        "in_progress": True,
        "stop_timer": False,
        "color": "#0066ff",
    },
    "in progress": {
        "name": "In Progress",
        "internal_name": "In Progress",
        "in_progress": True,
        "stop_timer": False,
        "color": "#00b3b3",
    },
    "on hold": {
        "name": "On Hold",
        "internal_name": "Onhold",
        "in_progress": True,
        "stop_timer": True,
        "color": None,
    },
    "resolved": {
        "name": "Resolved",
        "internal_name": "Resolved",
        "in_progress": False,
        "stop_timer": False,
        "color": "#00cc66",
    },
    "closed": {
        "name": "Closed",
        "internal_name": "Closed",
        "in_progress": False,
        "stop_timer": False,
        "color": "#006600",
    },
    "canceled": {
        "name": "Canceled",
        "internal_name": "Cancelled",
        "in_progress": False,
        "stop_timer": False,
        "color": "#999999",
    },
}

PRIORITY_COLORS = {
    "low": "#666666",
    "normal": "#00b33c",
    "medium": "#ff9900",
    "high": "#ff0000",
    "urgent": "#ff00ff",
}

# Fields a list call returns when `fields_required` is absent (observed in real Cloud list
# responses): notably no description, priority, resolution or resolved/updated times.
DEFAULT_LIST_FIELDS = (
    "id",
    "display_id",
    "subject",
    "requester",
    "technician",
    "group",
    "status",
    "template",
    "created_time",
    "due_by_time",
    "has_notes",
    "has_draft",
    "is_service_request",
    "cancellation_requested",
    "cancel_flag_comments",
)

API_TECHNICIAN: dict[str, Any] = {
    "id": "4",
    "name": "administrator",
    "email_id": None,
    "is_vipuser": False,
    "department": None,
}


def now_ms() -> int:
    return int(time.time() * 1000)


def display_value(ms: int) -> str:
    """SDP's human form, e.g. 'Jun 8, 2020 03:07 PM' (unpadded day, 12-hour clock)."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return f"{dt:%b} {dt.day}, {dt:%Y %I:%M %p}"


def sdp_time(ms: int | None) -> dict[str, str] | None:
    if ms is None:
        return None
    return {"value": str(ms), "display_value": display_value(ms)}


def to_ms(value: Any) -> int | None:
    """Accept ms-epoch ints/strings, datetimes, ISO strings or `{value}` objects."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return to_ms(value.get("value"))
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(aware.timestamp() * 1000)
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        return to_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))
    raise ValueError(f"not a time: {value!r}")


def stable_id(kind: str, name: str) -> str:
    """A long numeric string id, stable per (kind, name), shaped like SDP Cloud ids."""
    return str(123640000000000000 + zlib.crc32(f"{kind}:{name.lower()}".encode()) % 10**9)


def lookup(kind: str, value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        out = dict(value)
        name = str(out.get("name", ""))
        out.setdefault("id", stable_id(kind, name))
        out["id"] = str(out["id"])
        return out
    return {"id": stable_id(kind, str(value)), "name": str(value)}


def status_object(value: Any) -> dict[str, Any]:
    name = value.get("name", "Open") if isinstance(value, Mapping) else str(value or "Open")
    known = STATUSES.get(str(name).strip().lower())
    base = (
        dict(known)
        if known
        else {
            "name": str(name),
            "internal_name": str(name),
            "in_progress": True,
            "stop_timer": False,
            "color": None,
        }
    )
    base["id"] = stable_id("status", str(base["name"]))
    return base


def priority_object(value: Any) -> dict[str, Any] | None:
    obj = lookup("priority", value)
    if obj is not None:
        obj.setdefault("color", PRIORITY_COLORS.get(str(obj.get("name", "")).lower()))
    return obj


def person(kind: str, value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        out = {
            "email_id": None,
            "phone": None,
            "mobile": None,
            "is_vip_user": False,
            "department": None,
            **value,
        }
    else:
        out = {
            "name": str(value),
            "email_id": None,
            "phone": None,
            "mobile": None,
            "is_vip_user": False,
            "department": None,
        }
    out.setdefault("name", out.get("email_id") or "Unknown")
    out["id"] = str(out.get("id") or stable_id(kind, str(out["name"])))
    return out


def group_object(value: Any) -> dict[str, Any] | None:
    obj = lookup("group", value)
    if obj is not None:
        obj.setdefault("site", None)
        obj.setdefault("deleted", False)
    return obj


def resolution_object(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        out = dict(value)
        out.setdefault("resolution_attachments", [])
        return out
    return {"content": str(value), "resolution_attachments": []}


def build_request(fields: Mapping[str, Any], *, request_id: str, display_id: str) -> dict[str, Any]:
    """Normalise seed data into a full v3 request object (unknown keys are kept verbatim)."""
    raw = dict(fields)
    created = to_ms(raw.pop("created_time", None)) or now_ms()
    updated = to_ms(raw.pop("last_updated_time", None)) or created
    times = {
        name: to_ms(raw.pop(name, None))
        for name in TIME_FIELDS
        if name not in ("created_time", "last_updated_time")
    }
    status = status_object(raw.pop("status", "Open"))
    resolution = resolution_object(raw.pop("resolution", None))
    if times["resolved_time"] is None and not status["in_progress"] and resolution is not None:
        times["resolved_time"] = updated
    obj: dict[str, Any] = {
        "id": str(raw.pop("id", request_id)),
        "display_id": str(raw.pop("display_id", display_id)),
        "subject": str(raw.pop("subject", "")),
        "description": str(raw.pop("description", "") or ""),
        "status": status,
        "priority": priority_object(raw.pop("priority", "Medium")),
        "requester": person("requester", raw.pop("requester", "Guest")),
        "technician": person("technician", raw.pop("technician", None)),
        "group": group_object(raw.pop("group", None)),
        "created_by": dict(API_TECHNICIAN),
        "created_time": sdp_time(created),
        "last_updated_time": sdp_time(updated),
        "resolution": resolution,
        "udf_fields": dict(raw.pop("udf_fields", None) or {}),
        "has_notes": bool(raw.pop("has_notes", False)),
        "is_overdue": bool(raw.pop("is_overdue", False)),
        "is_trashed": False,
        "closure_info": raw.pop("closure_info", None),
        "assets": list(raw.pop("assets", None) or []),
        "email_cc": list(raw.pop("email_cc", None) or []),
        "email_to": list(raw.pop("email_to", None) or []),
        "has_draft": False,
        "is_service_request": False,
        "cancellation_requested": False,
        "cancel_flag_comments": None,
    }
    for name, ms in times.items():
        obj[name] = sdp_time(ms)
    for name in LOOKUP_FIELDS:
        obj[name] = lookup(name, raw.pop(name, None))
    obj.update(raw)
    return obj


def project(obj: Mapping[str, Any], fields_required: list[str] | None) -> dict[str, Any]:
    """What a list call returns for one request: the short default set plus what was asked."""
    wanted = list(DEFAULT_LIST_FIELDS) + list(fields_required or [])
    return {name: obj.get(name) for name in wanted if name in obj}


def note_object(
    note_id: str,
    request: Mapping[str, Any],
    description: str,
    flags: Mapping[str, bool],
    created_ms: int,
) -> dict[str, Any]:
    """A stored note carrying both the Cloud (created_*) and on-prem (added_*) field names."""
    stamp = sdp_time(created_ms)
    return {
        "id": note_id,
        "description": description,
        **flags,
        "created_time": stamp,
        "added_time": stamp,
        "last_updated_time": stamp,
        "created_by": dict(API_TECHNICIAN),
        "added_by": dict(API_TECHNICIAN),
        "request": {
            "id": request["id"],
            "display_id": request.get("display_id"),
            "subject": request.get("subject"),
        },
    }

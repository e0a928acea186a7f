"""Handlers for the SDP v3 endpoints the service uses: requests, notes, worklogs.

Each handler validates exactly what real SDP validates (wrapper keys, mandatory fields, value
types, read-only fields) before it changes anything, so a rejected call leaves no trace but
its entry in the call log.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .store import NOTE_KEYS, NoteRecord, Portal, SimulatorState, StoredRequest
from .wire.envelopes import SdpHttpError, bad_input, mandatory_missing, not_found, success
from .wire.input_data import InputFormat, read_input_data, single_wrapper
from .wire.records import (
    LOOKUP_FIELDS,
    STATUSES,
    group_object,
    lookup,
    note_object,
    now_ms,
    person,
    priority_object,
    project,
    resolution_object,
    sdp_time,
    status_object,
    to_ms,
)
from .wire.search import ListInfo, parse_list_info, select

NOTE_FLAGS = (
    "show_to_requester",
    "notify_technician",
    "mark_first_response",
    "add_to_linked_requests",
)
READ_ONLY = {
    "id",
    "display_id",
    "created_time",
    "created_by",
    "last_updated_time",
    "resolved_time",
    "completed_time",
    "has_notes",
    "is_trashed",
    "is_overdue",
}


@dataclass
class Call:
    """One authenticated API call: who it is for, and what `input_data` form it used."""

    request: Request
    state: SimulatorState
    portal: Portal
    input_format: InputFormat = "none"

    @property
    def request_id(self) -> str:
        return str(self.request.path_params["request_id"])

    async def input_data(self, *, required: bool) -> dict[str, Any] | None:
        data, self.input_format = await read_input_data(self.request, required=required)
        return data


def _live(call: Call) -> StoredRequest:
    """The addressed request, or 404/4007 when unknown or in the trash. Hold the lock."""
    record = call.portal.requests.get(call.request_id)
    if record is None or record.deleted:
        raise not_found("request")
    return record


async def get_request(call: Call) -> Response:
    with call.state.lock:
        return success({"request": copy.deepcopy(_live(call).data)})


async def list_requests(call: Call) -> Response:
    info = parse_list_info(await call.input_data(required=False))
    with call.state.lock:
        items = [r.data for r in call.portal.requests.values() if not r.deleted]
        page, echo = select(items, info)
        rows = [copy.deepcopy(project(obj, info.fields_required)) for obj in page]
    return success({"requests": rows, "list_info": echo}, list_call=True)


async def create_request(call: Call) -> Response:
    data = await call.input_data(required=True)
    assert data is not None
    _, body = single_wrapper(data, ("request",))
    if not str(body.get("subject") or "").strip():
        raise mandatory_missing("subject")
    fields = {k: v for k, v in body.items() if k not in READ_ONLY}
    created = call.state.add_request(call.portal.name, fields)
    return success({"request": created})


def _typed(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body[name]
    if value is not None and not isinstance(value, kind):
        raise SdpHttpError(400, 4021, f"Invalid value for {name}", field=name)
    return value


def _time_value(body: Mapping[str, Any], name: str) -> dict[str, str] | None:
    """SDP takes times as `{"value": "<ms>"}`; anything unparseable is a type mismatch."""
    value = body.get(name)
    if value is not None and not isinstance(value, Mapping):
        raise SdpHttpError(400, 4021, f"Invalid value for {name}", field=name)
    try:
        return sdp_time(to_ms(value))
    except ValueError:
        raise SdpHttpError(400, 4021, f"Invalid value for {name}", field=name) from None


def _changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a PUT body into normalised field values, without touching the request."""
    out: dict[str, Any] = {}
    for name in body:
        if name in READ_ONLY:
            raise SdpHttpError(400, 4014, f"{name} is a read-only field", field=name)
        if name in ("subject", "description"):
            out[name] = str(_typed(body, name, str) or "")
        elif name == "status":
            value = _typed(body, name, dict)
            if not value or not (value.get("name") or value.get("id")):
                raise SdpHttpError(400, 4001, "Status not found", field="status")
            status = status_object(value)
            if status["name"].lower() not in STATUSES:
                raise SdpHttpError(400, 4001, "Status not found", field="status")
            out[name] = status
        elif name == "priority":
            out[name] = priority_object(_typed(body, name, dict))
        elif name in ("requester", "technician"):
            out[name] = person(name, _typed(body, name, dict))
        elif name == "group":
            out[name] = group_object(_typed(body, name, dict))
        elif name == "resolution":
            out[name] = resolution_object(_typed(body, name, dict))
        elif name in ("udf_fields", "closure_info"):
            out[name] = _typed(body, name, dict)
        elif name in ("email_cc", "email_to", "assets"):
            out[name] = list(_typed(body, name, list) or [])
        elif name == "due_by_time":
            out[name] = _time_value(body, name)
        elif name in LOOKUP_FIELDS:
            out[name] = lookup(name, _typed(body, name, dict))
        else:
            raise bad_input(f"Invalid field '{name}'", field=name)
    return out


def _apply(obj: dict[str, Any], changes: dict[str, Any]) -> None:
    was_open = obj["status"]["in_progress"]
    udf = changes.pop("udf_fields", None)
    if udf is not None:
        obj["udf_fields"] = {**obj.get("udf_fields", {}), **udf}
    obj.update(changes)
    stamp = now_ms()
    obj["last_updated_time"] = sdp_time(stamp)
    if was_open and not obj["status"]["in_progress"]:
        obj["resolved_time"] = obj.get("resolved_time") or sdp_time(stamp)
        if obj["status"]["name"] == "Closed":
            obj["completed_time"] = sdp_time(stamp)


async def update_request(call: Call) -> Response:
    with call.state.lock:
        _live(call)
    data = await call.input_data(required=True)
    assert data is not None
    _, body = single_wrapper(data, ("request",))
    changes = _changes(body)
    with call.state.lock:
        record = _live(call)
        _apply(record.data, changes)
        return success({"request": copy.deepcopy(record.data)})


def _note_flags(body: Mapping[str, Any]) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    for name in NOTE_FLAGS:
        value = body.get(name, False)
        if not isinstance(value, bool):
            raise SdpHttpError(400, 4021, f"Invalid value for {name}", field=name)
        flags[name] = value
    return flags


async def add_note(call: Call) -> Response:
    with call.state.lock:
        _live(call)
    data = await call.input_data(required=True)
    assert data is not None
    key, body = single_wrapper(data, NOTE_KEYS)
    if key not in call.portal.accepted_note_keys:
        raise bad_input(f"Invalid input_data: unexpected key '{key}'", field=key)
    description = body.get("description")
    if not isinstance(description, str) or not description.strip():
        raise mandatory_missing("description")
    flags = _note_flags(body)
    with call.state.lock:
        record = _live(call)
        if record.reject_notes_reason:
            raise SdpHttpError(200, 4000, record.reject_notes_reason, as_list=True)
        note_id = call.portal.new_child_id()
        stamp = now_ms()
        shown = {k: flags[k] for k in NOTE_FLAGS if k != "add_to_linked_requests"}
        note = note_object(note_id, record.data, description, shown, stamp)
        record.notes.append(note)
        record.data["has_notes"] = True
        call.state.record_note(
            NoteRecord(
                portal=call.portal.name,
                request_id=call.request_id,
                note_id=note_id,
                wrapper_key=key,
                description=description,
                show_to_requester=flags["show_to_requester"],
                notify_technician=flags["notify_technician"],
                mark_first_response=flags["mark_first_response"],
                input_format=call.input_format,
                created_at=stamp / 1000,
            )
        )
        return success({key: copy.deepcopy(note)})


def _page(
    items: list[dict[str, Any]], info: ListInfo
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    start = info.start_index - 1
    rows = items[start : start + info.row_count]
    echo = {
        "has_more_rows": start + len(rows) < len(items),
        "start_index": info.start_index,
        "row_count": len(rows),
    }
    if info.get_total_count:
        echo["total_count"] = len(items)
    return copy.deepcopy(rows), echo


async def list_notes(call: Call) -> Response:
    with call.state.lock:
        _live(call)
    raw = await call.input_data(required=False)
    info = parse_list_info(raw) if raw is not None else ListInfo(row_count=100)
    with call.state.lock:
        rows, echo = _page(_live(call).notes, info)
    return success({"notes": rows, "list_info": echo}, list_call=True)


async def get_note(call: Call) -> Response:
    wanted = str(call.request.path_params["note_id"])
    with call.state.lock:
        note = next((n for n in _live(call).notes if n["id"] == wanted), None)
        if note is None:
            raise not_found("note")
        key = "request_note" if call.portal.edition == "cloud" else "note"
        return success({key: copy.deepcopy(note)})


def _time_spent(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise SdpHttpError(400, 4021, "Invalid value for time_spent", field="time_spent")
    out: dict[str, str] = {}
    for part in ("hours", "minutes"):
        try:
            out[part] = str(int(value.get(part, 0)))
        except (TypeError, ValueError):
            raise SdpHttpError(
                400, 4021, "Invalid value for time_spent", field="time_spent"
            ) from None
    return out


async def add_worklog(call: Call) -> Response:
    with call.state.lock:
        _live(call)
    data = await call.input_data(required=True)
    assert data is not None
    _, body = single_wrapper(data, ("worklog",))
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise SdpHttpError(400, 4021, "Invalid value for description", field="description")
    spent = _time_spent(body.get("time_spent", {}))
    owner = body.get("owner")
    if owner is not None and not isinstance(owner, Mapping):
        raise SdpHttpError(400, 4021, "Invalid value for owner", field="owner")
    with call.state.lock:
        record = _live(call)
        stamp = now_ms()
        worklog = {
            "id": call.portal.new_child_id(),
            "description": description,
            "owner": person("technician", owner) if owner else None,
            "time_spent": spent,
            "start_time": _time_value(body, "start_time"),
            "end_time": _time_value(body, "end_time"),
            "worklog_type": lookup("worklog_type", body.get("worklog_type")),
            "created_time": sdp_time(stamp),
            "request": {"id": record.data["id"]},
        }
        record.worklogs.append(worklog)
        return success({"worklog": copy.deepcopy(worklog)})


async def list_worklogs(call: Call) -> Response:
    with call.state.lock:
        rows, echo = _page(_live(call).worklogs, ListInfo(row_count=100))
    return success({"worklogs": rows, "list_info": echo}, list_call=True)


async def unknown_path(call: Call) -> Response:
    raise not_found()

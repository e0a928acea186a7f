"""The simulator's in-memory world: portals (one per tenant), their requests, notes, and logs.

Tests and the demo hold a `SimulatorState` directly to seed data, set faults and assert on
what the system wrote, while the server thread reads and mutates the same object. Every
mutation therefore happens under one re-entrant lock, and readers get copies, so an assertion
never sees a half-applied write.
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from core.tenant_types import Edition

from .faults import FaultConfig, RateWindow
from .wire.records import build_request, now_ms, sdp_time, status_object

NOTE_KEYS = ("request_note", "note")
_FLAG_KEYS = ("reject_notes_reason", "deleted")


@dataclass
class StoredRequest:
    data: dict[str, Any]
    notes: list[dict[str, Any]] = field(default_factory=list)
    worklogs: list[dict[str, Any]] = field(default_factory=list)
    reject_notes_reason: str | None = None
    deleted: bool = False


@dataclass
class NoteRecord:
    """One note as the system under test wrote it, for assertions."""

    portal: str
    request_id: str
    note_id: str
    wrapper_key: str
    description: str
    show_to_requester: bool
    notify_technician: bool
    mark_first_response: bool
    input_format: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CallRecord:
    """One HTTP call to the SDP API (not the control API), for counting and ordering."""

    portal: str | None
    method: str
    path: str
    status: int
    at: float
    input_format: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Portal:
    name: str
    api_key: str
    edition: Edition
    accepted_note_keys: tuple[str, ...] = NOTE_KEYS
    requests: dict[str, StoredRequest] = field(default_factory=dict)
    faults: FaultConfig = field(default_factory=FaultConfig)
    window: RateWindow = field(default_factory=RateWindow)
    next_number: int = 1
    next_child_id: int = 1

    def new_child_id(self) -> str:
        """Ids for notes and worklogs: unique per portal, strings like every SDP id."""
        self.next_child_id += 1
        return str(900000 + self.next_child_id)

    def summary(self) -> dict[str, Any]:
        """What the control API shows; never the key (logs of the demo must not carry it)."""
        return {
            "name": self.name,
            "edition": self.edition,
            "accepted_note_keys": list(self.accepted_note_keys),
            "requests": len(self.requests),
            "faults": self.faults.to_dict(),
        }


class SimulatorState:
    """Everything one simulator instance knows; safe to share with the server thread."""

    def __init__(self, seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.portals: dict[str, Portal] = {}
        self._notes: list[NoteRecord] = []
        self._calls: list[CallRecord] = []

    # -- portals -----------------------------------------------------------------------------
    def add_portal(
        self,
        name: str,
        api_key: str,
        edition: Edition = "onprem",
        *,
        accepted_note_keys: Iterable[str] = NOTE_KEYS,
    ) -> Portal:
        if edition not in ("onprem", "cloud"):
            raise ValueError(f"edition must be 'onprem' or 'cloud', not {edition!r}")
        keys = tuple(accepted_note_keys)
        if not keys or any(key not in NOTE_KEYS for key in keys):
            raise ValueError(f"accepted_note_keys must be a subset of {NOTE_KEYS}")
        if not api_key:
            raise ValueError("api_key must not be empty")
        with self.lock:
            if name in self.portals:
                raise ValueError(f"portal {name!r} already exists")
            if self.portal_for_key(api_key) is not None:
                raise ValueError("another portal already uses this API key")
            portal = Portal(name, api_key, edition, keys)
            self.portals[name] = portal
            return portal

    def portal(self, name: str) -> Portal:
        with self.lock:
            try:
                return self.portals[name]
            except KeyError:
                raise KeyError(f"unknown portal {name!r}") from None

    def portal_for_key(self, api_key: str) -> Portal | None:
        with self.lock:
            return next((p for p in self.portals.values() if p.api_key == api_key), None)

    def remove_portal(self, name: str) -> None:
        with self.lock:
            self.portal(name)
            del self.portals[name]

    # -- requests ----------------------------------------------------------------------------
    def add_request(
        self, portal: str, request: Mapping[str, Any] | None = None, /, **fields: Any
    ) -> dict[str, Any]:
        """Seed one request from a v3-shaped dict and/or keyword fields; returns a copy.

        Besides v3 fields, `reject_notes_reason="Request is closed"` makes note POSTs fail
        with SDP's HTTP-200 failed envelope, and `deleted=True` makes the request 404.
        """
        merged = {**(dict(request) if request else {}), **fields}
        flags = {key: merged.pop(key) for key in _FLAG_KEYS if key in merged}
        with self.lock:
            target = self.portal(portal)
            number = target.next_number
            obj = build_request(merged, request_id=str(100000 + number), display_id=str(number))
            if obj["id"] in target.requests:
                raise ValueError(f"request {obj['id']} already exists in portal {portal!r}")
            target.next_number += 1
            target.requests[obj["id"]] = StoredRequest(
                data=obj,
                reject_notes_reason=flags.get("reject_notes_reason"),
                deleted=bool(flags.get("deleted", False)),
            )
            return copy.deepcopy(obj)

    def add_requests(self, portal: str, requests: Iterable[Mapping[str, Any]]) -> list[str]:
        return [self.add_request(portal, item)["id"] for item in requests]

    def stored(self, portal: str, request_id: str) -> StoredRequest:
        """The live record (callers must hold `lock` while mutating it)."""
        with self.lock:
            try:
                return self.portal(portal).requests[str(request_id)]
            except KeyError:
                raise KeyError(f"unknown request {request_id!r} in {portal!r}") from None

    def get_request(self, portal: str, request_id: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.stored(portal, request_id).data)

    def set_request_flags(self, portal: str, request_id: str, **flags: Any) -> None:
        """Set `reject_notes_reason` (str or None) and/or `deleted` (bool) on a request."""
        unknown = set(flags) - set(_FLAG_KEYS)
        if unknown:
            raise ValueError(f"unknown request flags: {', '.join(sorted(unknown))}")
        with self.lock:
            record = self.stored(portal, request_id)
            if "reject_notes_reason" in flags:
                reason = flags["reject_notes_reason"]
                record.reject_notes_reason = None if reason is None else str(reason)
            if "deleted" in flags:
                record.deleted = bool(flags["deleted"])
                record.data["is_trashed"] = record.deleted

    def resolve_request(self, portal: str, request_id: str, resolution: str) -> dict[str, Any]:
        """What a technician closing the ticket does: status Resolved, the resolution text and
        its time; returns a copy (send it with the resolved-ticket webhook)."""
        stamp = now_ms()
        with self.lock:
            record = self.stored(portal, request_id)
            record.data["status"] = status_object("Resolved")
            record.data["resolution"] = {"content": resolution}
            record.data["resolved_time"] = sdp_time(stamp)
            record.data["last_updated_time"] = sdp_time(stamp)
            return copy.deepcopy(record.data)

    # -- faults ------------------------------------------------------------------------------
    def set_faults(
        self, portal: str, faults: FaultConfig | None = None, /, **settings: Any
    ) -> FaultConfig:
        """Replace a portal's faults (`faults` and/or keyword settings); no args clears them."""
        with self.lock:
            target = self.portal(portal)
            base = faults or FaultConfig()
            target.faults = FaultConfig.from_dict(settings, base) if settings else base
            target.window = RateWindow()
            return target.faults

    def update_faults(self, portal: str, **settings: Any) -> FaultConfig:
        """Merge settings into the portal's current faults (keeps unconsumed counters)."""
        with self.lock:
            target = self.portal(portal)
            target.faults = FaultConfig.from_dict(settings, target.faults)
            return target.faults

    # -- records -----------------------------------------------------------------------------
    def record_note(self, record: NoteRecord) -> None:
        with self.lock:
            self._notes.append(record)

    def record_call(self, record: CallRecord) -> None:
        with self.lock:
            self._calls.append(record)

    def recorded_notes(
        self, portal: str | None = None, request_id: str | None = None
    ) -> list[NoteRecord]:
        with self.lock:
            return [
                copy.copy(n)
                for n in self._notes
                if (portal is None or n.portal == portal)
                and (request_id is None or n.request_id == str(request_id))
            ]

    def calls(
        self, portal: str | None = None, method: str | None = None, path_contains: str | None = None
    ) -> list[CallRecord]:
        with self.lock:
            return [
                copy.copy(c)
                for c in self._calls
                if (portal is None or c.portal == portal)
                and (method is None or c.method == method.upper())
                and (path_contains is None or path_contains in c.path)
            ]

    def clear_calls(self) -> None:
        with self.lock:
            self._calls.clear()

    def reset(self) -> None:
        """Forget everything: portals, requests, notes, calls."""
        with self.lock:
            self.portals.clear()
            self._notes.clear()
            self._calls.clear()

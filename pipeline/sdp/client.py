"""Async client for a tenant's ServiceDesk Plus v3 API: read tickets, write private notes.

SDP's wire format is unusual and unforgiving (ServiceDesk Plus v3 API): writes are the form field
`input_data=<JSON>`, auth differs by edition, `response_status` is an object or an array, and
a failure can arrive with HTTP 200. This module hides all of that behind the typed exceptions
of `pipeline.sdp.wire`, so the pipeline can decide per class what to do. The API key goes
only into request headers — never into a URL, a log line, an exception message or a repr.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx
import tenacity

from core.sdp_url_policy import SdpUrlPolicy, SdpUrlRefused, check_url_always
from core.tenant_types import Edition
from pipeline.sdp.transport import guarded_http_client
from pipeline.sdp.wire import SdpError, SdpRejected, SdpUnavailable, raise_for_envelope

ACCEPT = "application/vnd.manageengine.sdp.v3+json"
MAX_ROW_COUNT = 100
NOTE_KEYS = ("request_note", "note")
log = logging.getLogger(__name__)


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


class SdpClient:
    """One tenant's SDP. Cheap to build per job when given a shared `http` client."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        edition: Edition,
        *,
        portal: str | None = None,
        timeout_s: float = 10.0,
        http: httpx.AsyncClient | None = None,
        max_attempts: int = 4,
        deadline_s: float | None = None,
        before_call: Callable[[], Awaitable[None]] | None = None,
        on_call: Callable[[str, float], None] | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        retry_after_cap_s: float = 60.0,
        note_key: str | None = None,
        url_policy: SdpUrlPolicy | None = None,
    ) -> None:
        """`before_call` runs before every HTTP attempt (the tenant's SDP rate limiter plugs
        in there); `on_call(outcome, seconds)` reports every attempt for metrics."""
        if edition not in ("onprem", "cloud"):
            raise ValueError(f"edition must be 'onprem' or 'cloud', not {edition!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        try:  # a URL stored before the SSRF rules (e.g. user:pass@) fails its calls, not this
            check_url_always(base_url)
            self._refusal: str | None = None
        except SdpUrlRefused as err:
            self._refusal = str(err)
        prefix = f"/app/{_segment(portal)}" if portal else ""
        self.api_root = f"{base_url.rstrip('/')}{prefix}/api/v3"
        self.edition: Edition = edition
        self.portal = portal
        self._api_key = api_key
        self._owns_http = http is None
        if http is None:  # `url_policy`: an own client that checks every address it connects to
            http = guarded_http_client(url_policy) if url_policy else httpx.AsyncClient()
        self._http = http
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._deadline_s = deadline_s
        self._before_call = before_call
        self._on_call = on_call
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._retry_after_cap_s = retry_after_cap_s
        # Cloud documents `request_note`, current on-prem `note`; learnt per client on fallback
        # (pass `note_key` to pin what a tenant's build is known to accept).
        self._note_key = note_key or ("request_note" if edition == "cloud" else "note")
        if self._note_key not in NOTE_KEYS:
            raise ValueError(f"note_key must be one of {NOTE_KEYS}")

    @property
    def note_key(self) -> str:
        """The note wrapper key this tenant's SDP accepted last (worth persisting per tenant)."""
        return self._note_key

    def __repr__(self) -> str:
        return f"SdpClient(api_root={self.api_root!r}, edition={self.edition!r})"

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> SdpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- transport -----------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        if self.edition == "cloud":
            return {"Accept": ACCEPT, "Authorization": f"Zoho-oauthtoken {self._api_key}"}
        return {"Accept": ACCEPT, "authtoken": self._api_key}

    def _report(self, outcome: str, seconds: float) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(outcome, seconds)
        except Exception:  # a metrics bug must not fail a ticket
            log.exception("sdp on_call callback failed")

    async def _attempt(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        form: Mapping[str, str] | None,
        timeout_s: float,
    ) -> dict[str, Any]:
        """Exactly one HTTP exchange, classified into a body or a typed exception."""
        if self._before_call is not None:
            await self._before_call()
        write = method in ("POST", "PUT")
        started = time.perf_counter()
        outcome = "error"
        try:
            if self._refusal is not None:
                raise SdpRejected(f"SDP {method} {path}: {self._refusal}", retryable=False)
            try:
                response = await self._http.request(
                    method,
                    f"{self.api_root}{path}",
                    params=params,
                    data=form,
                    headers=self._headers(),
                    timeout=timeout_s,
                )
            except SdpUrlRefused as err:  # the SSRF rules (sdp_transport): retrying cannot help
                raise SdpRejected(f"SDP {method} {path}: {err}", retryable=False) from None
            except httpx.TransportError as err:
                sent = not isinstance(
                    err, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                raise SdpUnavailable(
                    f"SDP {method} {path}: {type(err).__name__} {err}".strip(),
                    maybe_applied=write and sent,
                ) from None
            body = raise_for_envelope(response, write=write)
            outcome = "ok"
            return body
        except SdpError as err:
            err.scrub(self._api_key)
            outcome = err.outcome
            raise
        finally:
            self._report(outcome, time.perf_counter() - started)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """SDP's Retry-After (capped) when given, else exponential back-off with jitter."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, SdpError) and error.retry_after is not None:
            return min(error.retry_after, self._retry_after_cap_s)
        base = self._backoff_initial_s * 2 ** (state.attempt_number - 1)
        return min(base, self._backoff_max_s) + random.uniform(0, self._backoff_initial_s)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        input_data: Mapping[str, Any] | None = None,
        probe: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
    ) -> dict[str, Any]:
        """One logical call with retries; `probe` checks whether an ambiguous write landed."""
        form = {"input_data": json.dumps(input_data)} if input_data is not None else None
        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(self._max_attempts)
        if self._deadline_s is not None:
            stop = stop | tenacity.stop_before_delay(self._deadline_s)
        started = time.monotonic()
        ambiguous = False  # sticky: once a write may have landed, always look before re-posting
        retrying = tenacity.AsyncRetrying(
            stop=stop,
            wait=self._wait,
            reraise=True,
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, SdpError) and e.retryable),
            before_sleep=lambda s: log.warning(
                "SDP %s %s failed (%s), retry %d in %.2fs",
                method,
                path,
                s.outcome.exception() if s.outcome else "?",
                s.attempt_number,
                s.upcoming_sleep,
            ),
        )
        async for attempt in retrying:
            with attempt:
                try:
                    if probe is not None and ambiguous:
                        found = await probe()
                        if found is not None:
                            return found
                    return await self._attempt(
                        method,
                        path,
                        params=params,
                        form=form,
                        timeout_s=self._attempt_timeout(started),
                    )
                except SdpError as err:
                    ambiguous = ambiguous or err.maybe_applied
                    raise
        raise AssertionError("tenacity ended without a result")  # pragma: no cover

    def _attempt_timeout(self, started: float) -> float:
        if self._deadline_s is None:
            return self._timeout_s
        remaining = self._deadline_s - (time.monotonic() - started)
        if remaining <= 0:
            raise SdpUnavailable("SDP call deadline exceeded", retryable=False)
        return min(self._timeout_s, remaining)

    # -- requests ------------------------------------------------------------------------
    async def get_request(self, request_id: str | int) -> dict[str, Any]:
        body = await self._call("GET", f"/requests/{_segment(request_id)}")
        return _member(body, "request")

    async def list_requests(
        self, list_info: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page; returns the requests and SDP's `has_more_rows`."""
        if int(list_info.get("row_count", 10)) > MAX_ROW_COUNT:
            raise ValueError(f"row_count may not exceed {MAX_ROW_COUNT}")
        params = {"input_data": json.dumps({"list_info": dict(list_info)})}
        body = await self._call("GET", "/requests", params=params)
        rows = body.get("requests") or []
        info = body.get("list_info") or {}
        return list(rows), bool(info.get("has_more_rows", False))

    async def iter_requests(
        self,
        search_criteria: list[dict[str, Any]] | dict[str, Any] | None = None,
        *,
        row_count: int = MAX_ROW_COUNT,
        sort_field: str = "created_time",
        sort_order: Literal["asc", "desc"] = "asc",
        fields_required: list[str] | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Every matching request once, paging until `has_more_rows` is false.

        List rows are SDP's short form (no description, priority or resolution); name what
        you need in `fields_required` or fetch each request with `get_request`.
        """
        seen: set[str] = set()
        start = 1
        while True:
            info = {
                "row_count": row_count,
                "start_index": start,
                "sort_field": sort_field,
                "sort_order": sort_order,
                "search_criteria": search_criteria,
                "fields_required": fields_required,
            }
            rows, has_more = await self.list_requests({k: v for k, v in info.items() if v})
            for row in rows:
                key = str(row.get("id"))
                if key not in seen:
                    seen.add(key)
                    yield row
            if not has_more or not rows:
                return
            start += row_count

    async def update_request(
        self, request_id: str | int, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = await self._call(
            "PUT", f"/requests/{_segment(request_id)}", input_data={"request": dict(fields)}
        )
        return _member(body, "request")

    # -- notes ---------------------------------------------------------------------------
    async def _notes_pages(
        self, request_id: str | int, single_attempt: bool
    ) -> AsyncIterator[list[dict[str, Any]]]:
        path = f"/requests/{_segment(request_id)}/notes"
        start = 1
        while True:
            params = None
            if start > 1:  # the first page asks nothing special, like SDP's own UI
                info = {"list_info": {"row_count": MAX_ROW_COUNT, "start_index": start}}
                params = {"input_data": json.dumps(info)}
            if single_attempt:
                body = await self._attempt(
                    "GET", path, params=params, form=None, timeout_s=self._timeout_s
                )
            else:
                body = await self._call("GET", path, params=params)
            rows = list(body.get("notes") or [])
            yield rows
            info_out = body.get("list_info") or {}
            if not info_out.get("has_more_rows") or not rows:
                return
            start += len(rows)

    async def list_notes(self, request_id: str | int) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = []
        async for page in self._notes_pages(request_id, single_attempt=False):
            notes.extend(page)
        return notes

    async def _landed_note(self, request_id: str | int, html: str) -> dict[str, Any] | None:
        """After an ambiguous failure: did SDP store the note anyway? (single attempts)"""
        async for page in self._notes_pages(request_id, single_attempt=True):
            for note in page:
                if note.get("description") == html:
                    return {self._note_key: note}
        return None

    async def add_note(
        self, request_id: str | int, html: str, *, show_to_requester: bool = False
    ) -> str:
        """Post a (by default private) note and return its id.

        If SDP rejects the wrapper key as invalid input, the other key is tried once and
        remembered — older on-prem builds only know `request_note`. A write that may have
        landed before a timeout or 5xx is looked up before it is re-posted, so a retry does not
        leave two copies.
        """
        path = f"/requests/{_segment(request_id)}/notes"
        first = self._note_key
        for key in (first, NOTE_KEYS[1] if first == NOTE_KEYS[0] else NOTE_KEYS[0]):
            payload = {
                key: {
                    "description": html,
                    "show_to_requester": show_to_requester,
                    "notify_technician": False,
                    "mark_first_response": False,
                    "add_to_linked_requests": False,
                }
            }
            try:
                body = await self._call(
                    "POST",
                    path,
                    input_data=payload,
                    probe=lambda: self._landed_note(request_id, html),
                )
            except SdpRejected as err:
                if key == first and err.http_status == 400 and err.sdp_code in (4000, 4001):
                    log.info("SDP rejected note wrapper %r (%s); trying the other key", key, err)
                    continue
                raise
            self._note_key = key
            note = body.get(key) or next((body[k] for k in NOTE_KEYS if k in body), None)
            if not isinstance(note, Mapping) or not note.get("id"):
                raise SdpError("SDP accepted the note but returned no note id", 200)
            return str(note["id"])
        raise AssertionError("unreachable")  # pragma: no cover

    async def add_worklog(
        self,
        request_id: str | int,
        description: str,
        *,
        hours: int = 0,
        minutes: int = 0,
        owner: Mapping[str, Any] | None = None,
        worklog_type: str | None = None,
    ) -> str:
        worklog: dict[str, Any] = {
            "description": description,
            "time_spent": {"hours": str(hours), "minutes": str(minutes)},
        }
        if owner is not None:
            worklog["owner"] = dict(owner)
        if worklog_type is not None:
            worklog["worklog_type"] = {"name": worklog_type}
        body = await self._call(
            "POST", f"/requests/{_segment(request_id)}/worklogs", input_data={"worklog": worklog}
        )
        return str(_member(body, "worklog").get("id"))


def _member(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise SdpError(f"SDP response has no '{key}' object", 200)
    return value

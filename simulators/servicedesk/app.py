"""The simulator's ASGI app: routing, per-portal authentication and fault application.

Both URL styles are served: `/api/v3/...` (on-prem and older cloud clients; the API key picks
the portal) and `/app/{portal}/api/v3/...` (cloud and newer on-prem). Authentication is strict
per edition — on-prem takes `authtoken` (or legacy `TECHNICIAN_KEY`), cloud takes an OAuth
`Authorization` header — so a client that sends the wrong header for a tenant's edition fails
here as it would against the real product.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from . import api
from .control import control_routes
from .faults import decide
from .store import CallRecord, Portal, SimulatorState
from .wire.envelopes import SdpHttpError, invalid_key, not_found

Handler = Callable[[api.Call], Awaitable[Response]]
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
_HANG_POLL_S = 0.05


def credentials(request: Request) -> list[tuple[str, str]]:
    """Every (style, token) the request offers; style is 'authtoken' or 'oauth'."""
    found: list[tuple[str, str]] = []
    headers = request.headers
    for name in ("authtoken", "technician_key"):
        if headers.get(name):
            found.append(("authtoken", headers[name].strip()))
    if request.query_params.get("TECHNICIAN_KEY"):
        found.append(("authtoken", request.query_params["TECHNICIAN_KEY"].strip()))
    scheme, _, rest = headers.get("authorization", "").strip().partition(" ")
    scheme = scheme.lower()
    if scheme in ("authtoken:", "authtoken"):
        found.append(("authtoken", rest.strip().lstrip(":").strip()))
    elif scheme in ("zoho-oauthtoken", "bearer"):
        found.append(("oauth", rest.strip()))
    return found


def _style_for(portal: Portal) -> str:
    return "oauth" if portal.edition == "cloud" else "authtoken"


def identify_portal(state: SimulatorState, request: Request) -> Portal:
    """Cloud-style paths name the portal; on-prem-style paths are routed by the key itself."""
    name = request.path_params.get("portal")
    if name is not None:
        with state.lock:
            portal = state.portals.get(name)
        if portal is None:
            raise not_found("portal")
        return portal
    for _, token in credentials(request):
        portal = state.portal_for_key(token)
        if portal is not None:
            return portal
    raise invalid_key()


def authenticate(portal: Portal, request: Request) -> None:
    style = _style_for(portal)
    if not any(s == style and t == portal.api_key for s, t in credentials(request)):
        raise invalid_key()


async def _hang(state: SimulatorState, portal: Portal) -> None:
    """Hold the call while the portal's outage mode is 'hang' (the client should time out)."""
    deadline = time.monotonic() + portal.faults.hang_max_s
    while time.monotonic() < deadline:
        with state.lock:
            if portal.faults.outage != "hang":
                return
        await asyncio.sleep(_HANG_POLL_S)


async def _run(call: api.Call, handler: Handler) -> Response:
    """Apply the portal's faults, then authenticate and handle the call."""
    portal, state, request = call.portal, call.state, call.request
    with state.lock:
        decision = decide(
            portal.faults,
            portal.window,
            state.rng,
            method=request.method,
            path=request.url.path,
            now=time.monotonic(),
        )
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    if decision.hang:
        await _hang(state, portal)
    if decision.error is not None:
        raise decision.error
    authenticate(portal, request)
    response = await handler(call)
    if decision.fail_after is not None and response.status_code == 200:
        raise decision.fail_after
    return response


def sdp_route(path: str, handler: Handler, methods: list[str], *, list_call: bool = False) -> Route:
    """Wrap a handler with portal lookup, faults, auth, error envelopes and the call log."""

    async def endpoint(request: Request) -> Response:
        state: SimulatorState = request.app.state.sim
        call: api.Call | None = None
        try:
            call = api.Call(request, state, identify_portal(state, request))
            response = await _run(call, handler)
        except SdpHttpError as err:
            response = err.to_response(list_call)
        state.record_call(
            CallRecord(
                portal=call.portal.name if call else None,
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                at=time.time(),
                input_format=call.input_format if call else "none",
            )
        )
        return response

    return Route(path, endpoint, methods=methods)


def api_routes() -> list[BaseRoute]:
    return [
        sdp_route("/requests", api.list_requests, ["GET"], list_call=True),
        sdp_route("/requests", api.create_request, ["POST"]),
        sdp_route("/requests/{request_id}", api.get_request, ["GET"]),
        sdp_route("/requests/{request_id}", api.update_request, ["PUT"]),
        sdp_route("/requests/{request_id}/notes", api.list_notes, ["GET"], list_call=True),
        sdp_route("/requests/{request_id}/notes", api.add_note, ["POST"]),
        sdp_route("/requests/{request_id}/notes/{note_id}", api.get_note, ["GET"]),
        sdp_route("/requests/{request_id}/worklogs", api.list_worklogs, ["GET"], list_call=True),
        sdp_route("/requests/{request_id}/worklogs", api.add_worklog, ["POST"]),
        sdp_route("/{rest:path}", api.unknown_path, ALL_METHODS),
    ]


async def _outside_api(request: Request) -> Response:
    return not_found().to_response(list_call=False)


def create_app(state: SimulatorState | None = None) -> Starlette:
    """Build the simulator; the state is reachable afterwards as `app.state.sim`."""
    routes = api_routes()
    app = Starlette(
        routes=[
            Mount("/_sim", routes=control_routes()),
            Mount("/api/v3", routes=routes),
            Mount("/app/{portal}/api/v3", routes=routes),
            Route("/{rest:path}", _outside_api, methods=ALL_METHODS),
        ]
    )
    app.state.sim = state if state is not None else SimulatorState()
    return app

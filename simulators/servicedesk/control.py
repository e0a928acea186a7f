"""The `/_sim/...` control API: drive a simulator running in another process or thread.

The demo and the benchmarks run the simulator as a separate server, so everything a test can
do to a `SimulatorState` in-process — create portals, seed requests, flag a request closed,
set faults, read the notes written, count calls, make "SDP" fire a webhook — is also offered
here as plain JSON. It is deliberately unauthenticated: it binds to loopback in every use.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .store import SimulatorState
from .webhook_sender import build_payload, send_webhook_async

Endpoint = Callable[[Request], Awaitable[Response]]


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.sim
    return state


async def _json(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError:
        raise ValueError("body is not valid JSON") from None


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("body must be a JSON object")
    return value


def _require(body: dict[str, Any], *names: str) -> None:
    missing = [name for name in names if body.get(name) in (None, "")]
    if missing:
        raise ValueError(f"missing field(s): {', '.join(missing)}")


def _guarded(fn: Endpoint) -> Endpoint:
    """Map the state's ValueError/KeyError to 400/404 `{"detail"}` answers."""

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except KeyError as err:
            return JSONResponse({"detail": str(err.args[0] if err.args else err)}, 404)
        except (ValueError, TypeError) as err:
            return JSONResponse({"detail": str(err)}, 400)

    return endpoint


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def reset(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"status": "reset"})


async def list_portals(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return JSONResponse({"portals": [p.summary() for p in state.portals.values()]})


async def create_portal(request: Request) -> Response:
    body = _object(await _json(request))
    _require(body, "name", "api_key")
    portal = _state(request).add_portal(
        str(body["name"]),
        str(body["api_key"]),
        body.get("edition", "onprem"),
        accepted_note_keys=body.get("accepted_note_keys", ("request_note", "note")),
    )
    return JSONResponse(portal.summary(), 201)


async def delete_portal(request: Request) -> Response:
    _state(request).remove_portal(request.path_params["portal"])
    return Response(status_code=204)


async def add_requests(request: Request) -> Response:
    """Body: one request object, a list of them, or `{"requests": [...]}`."""
    body = await _json(request)
    if isinstance(body, dict) and isinstance(body.get("requests"), list):
        body = body["requests"]
    items = body if isinstance(body, list) else [_object(body)]
    ids = _state(request).add_requests(
        request.path_params["portal"], [_object(item) for item in items]
    )
    return JSONResponse({"ids": ids}, 201)


async def get_request(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        record = state.stored(request.path_params["portal"], request.path_params["request_id"])
        return JSONResponse(
            {
                "request": record.data,
                "notes": record.notes,
                "worklogs": record.worklogs,
                "deleted": record.deleted,
                "reject_notes_reason": record.reject_notes_reason,
            }
        )


async def patch_request(request: Request) -> Response:
    """Body: `{"reject_notes_reason": "Request is closed" | null, "deleted": bool}`."""
    flags = _object(await _json(request))
    _state(request).set_request_flags(
        request.path_params["portal"], request.path_params["request_id"], **flags
    )
    return await get_request(request)


async def faults(request: Request) -> Response:
    """GET shows, PUT replaces, PATCH merges, DELETE clears a portal's fault settings."""
    state, name = _state(request), request.path_params["portal"]
    if request.method == "PUT":
        config = state.set_faults(name, **_object(await _json(request)))
    elif request.method == "PATCH":
        config = state.update_faults(name, **_object(await _json(request)))
    elif request.method == "DELETE":
        config = state.set_faults(name)
    else:
        config = state.portal(name).faults
    return JSONResponse(config.to_dict())


async def notes(request: Request) -> Response:
    query = request.query_params
    found = _state(request).recorded_notes(query.get("portal"), query.get("request_id"))
    return JSONResponse({"notes": [n.to_dict() for n in found]})


async def calls(request: Request) -> Response:
    state, query = _state(request), request.query_params
    if request.method == "DELETE":
        state.clear_calls()
        return Response(status_code=204)
    found = state.calls(query.get("portal"), query.get("method"), query.get("path_contains"))
    return JSONResponse({"calls": [c.to_dict() for c in found], "count": len(found)})


async def fire_webhook(request: Request) -> Response:
    """Act as the portal's configured webhook: body `{url, mode, secret, request_id,
    shape: "v3"|"flat", event?, timestamp?}`; answers with what the receiver returned."""
    body = _object(await _json(request))
    _require(body, "url", "secret", "request_id")
    state = _state(request)
    stored = state.get_request(request.path_params["portal"], str(body["request_id"]))
    payload = build_payload(stored, body.get("shape", "v3"), event=body.get("event"))
    try:
        response = await send_webhook_async(
            str(body["url"]),
            payload,
            body.get("mode", "hmac"),
            str(body["secret"]),
            timestamp=body.get("timestamp"),
        )
    except httpx.HTTPError as err:
        return JSONResponse({"detail": f"webhook delivery failed: {err!r}"}, 502)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    return JSONResponse({"status_code": response.status_code, "body": answer, "payload": payload})


def control_routes() -> list[BaseRoute]:
    table: list[tuple[str, Endpoint, list[str]]] = [
        ("/health", health, ["GET"]),
        ("/reset", reset, ["POST"]),
        ("/portals", list_portals, ["GET"]),
        ("/portals", create_portal, ["POST"]),
        ("/portals/{portal}", delete_portal, ["DELETE"]),
        ("/portals/{portal}/requests", add_requests, ["POST"]),
        ("/portals/{portal}/requests/{request_id}", get_request, ["GET"]),
        ("/portals/{portal}/requests/{request_id}", patch_request, ["PATCH"]),
        ("/portals/{portal}/faults", faults, ["GET", "PUT", "PATCH", "DELETE"]),
        ("/portals/{portal}/webhooks", fire_webhook, ["POST"]),
        ("/notes", notes, ["GET"]),
        ("/calls", calls, ["GET", "DELETE"]),
    ]
    return [Route(path, _guarded(fn), methods=methods) for path, fn, methods in table]

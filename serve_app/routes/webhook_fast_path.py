"""The two webhook routes served without FastAPI's per-request machinery.

A webhook is the one request every ticket makes, so its path is kept short. ``WebhookFastPath``
sits in the app's middleware stack right after the request guard — the body limit, the read
timeout, the NUL rules and the JSON rules have run, as for every route — and in front of
FastAPI. A POST whose path matches one of the webhook routes declared in
``serve_app.routes.webhooks`` is answered here: the declared route's own endpoint is called with
its path parameter, a Starlette ``Request`` and the app's state, and an exception it raises is
answered by the app's own exception handlers, found the way Starlette finds them. What is
skipped is FastAPI's machinery around the endpoint: matching the path against every route of the
app, dependency resolution, the exception middleware and the request wrapper. Authentication,
validation, the intake throttle, the answers, the metrics and the log lines are the same code as
on the declared routes, which stay in the app for the OpenAPI document (``/openapi.json``,
``/docs``) and for ``create_api(..., lean_webhooks=False)``.

Everything else — other paths, and other methods on the webhook paths (FastAPI's 405) — goes on
to FastAPI. The matched route is put in the scope as FastAPI's router puts it, and the
request's trace span is named after it, so the request metrics, log lines and traces name the
route template, never the path. An exception no handler of the
app claims goes on up to ``UnhandledErrors`` (a logged 500), as it does from the router.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.observability.tracing import name_request_span
from serve_app.api_state import ApiState
from serve_app.routes.webhooks import FAST_PATH_ENDPOINTS, router

ExceptionHandler = Any  # Starlette's handlers: sync or async, (Request, Exception) -> Response


class WebhookFastPath:
    """Pure ASGI middleware: the webhook routes' endpoints called directly, the rest to FastAPI."""

    def __init__(self, app: ASGIApp, api: FastAPI, state: ApiState) -> None:
        self.app = app
        self.api = api
        self.state = state
        # the declared routes themselves: ``create_api`` includes their router without a prefix
        self.routes = [
            route
            for route in router.routes
            if isinstance(route, APIRoute) and route.endpoint in FAST_PATH_ENDPOINTS
        ]
        assert len(self.routes) == len(FAST_PATH_ENDPOINTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child_scope)
                    name_request_span(scope["method"], route.path)
                    await self._serve(route, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, route: APIRoute, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response: Response = await route.endpoint(
                **scope["path_params"], request=request, state=self.state
            )
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> ExceptionHandler | None:
        """The app's handler for this exception's class or its nearest base, as Starlette's
        exception middleware picks it; the catch-all (``Exception``) is left to the middleware
        that answers 500."""
        handlers = self.api.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]
        return None


__all__ = ["WebhookFastPath"]

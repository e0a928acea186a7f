"""The FastAPI application: routes, error mapping and request metrics.

Built by a factory so the same app runs inside the Serve ingress and under bare uvicorn (the
benchmark baseline). The error mapping enforces the contract that bad input never produces a
500 and no response ever carries a stack trace.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import metric_catalogue as mc
from core.version import package_version
from serve_app.api_docs import install_offline_docs
from serve_app.api_state import ApiState, DatabaseUnavailable
from serve_app.guards.request_guard import RequestGuard, UnhandledErrors, route_label
from serve_app.openapi_security import install_openapi_security
from serve_app.routes import (
    admin,
    enhancements,
    feedback,
    feedback_links,
    health,
    usage,
    webhooks,
)
from serve_app.routes.webhook_fast_path import WebhookFastPath

log = logging.getLogger(__name__)

DESCRIPTION = """Turns every new ServiceDesk Plus ticket into a better ticket: a private note
with similar past tickets, KB articles, the ticket's IP addresses, likely causes, next steps and
a confidence. Webhooks are authenticated per tenant (HMAC or static token); the tenant API uses
`Authorization: Bearer <tenant API token>`; admin routes use the admin token."""


class RequestMetrics:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot webhook path)."""

    def __init__(self, app: ASGIApp, state: ApiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            self.state.metrics.observe(
                mc.HTTP_LATENCY,
                time.perf_counter() - started,
                {"route": template, "method": method},
            )
            self.state.metrics.inc(
                mc.HTTP_REQUESTS, {"route": template, "method": method, "status": str(status)}
            )


def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse({"detail": "Malformed JSON"}, status_code=400)
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]  # no "input" echo: it may hold secrets
    return JSONResponse({"detail": detail}, status_code=422)


def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", type(exc).__name__)
    return JSONResponse(
        {"detail": "Database unavailable, retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def _unrepresentable(request: Request, exc: Exception) -> JSONResponse:
    """Defence in depth: PostgreSQL's class 22 (a value it cannot represent or convert), and
    asyncpg's own encoding failures, are caused by a value the client sent; the input rules of
    the request guard should have refused it first, so this is logged as a gap to close."""
    log.warning(
        "value refused by the database on %s %s: %s",
        request.method,
        route_label(request.scope),
        type(exc).__name__,
    )
    return JSONResponse(
        {"detail": "A value in the request cannot be stored (out of range or not representable)"},
        status_code=422,
    )


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # exc_info explicitly: this handler may run on a worker thread where sys.exc_info() is
    # empty (the JSON log line would say "exc": "NoneType: None")
    log.error("unhandled error on %s %s", request.method, route_label(request.scope), exc_info=exc)
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


def create_api(state: ApiState, *, lean_webhooks: bool = True, **fastapi_kwargs: Any) -> FastAPI:
    """The app. ``lean_webhooks=False`` leaves the webhooks to FastAPI's router (the declared
    routes, the same endpoints): the comparison the fast path's tests make."""
    app = FastAPI(
        title="AI Agents",
        version=package_version(),
        description=DESCRIPTION,
        docs_url=None,  # FastAPI's pages load from a CDN; install_offline_docs serves them
        redoc_url=None,
        **fastapi_kwargs,
    )
    install_offline_docs(app)
    app.state.api = state
    for router in (
        webhooks.router,
        enhancements.router,
        feedback.router,
        admin.router,
        health.router,
        feedback_links.router,
        usage.router,
    ):
        app.include_router(router)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    for exc_type in (
        DatabaseUnavailable,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.InterfaceError,
        ConnectionError,
        OSError,
        TimeoutError,
    ):
        app.add_exception_handler(exc_type, _unavailable)
    app.add_exception_handler(asyncpg.DataError, _unrepresentable)
    app.add_exception_handler(Exception, _unexpected)
    # added innermost first: metrics see every answer, including the guard's 4xx and 500s;
    # the webhook fast path runs after the guard and before FastAPI's router
    if lean_webhooks:
        app.add_middleware(WebhookFastPath, api=app, state=state)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=state.settings.max_body_bytes,
        body_timeout_s=state.settings.body_read_timeout_s,
    )
    app.add_middleware(UnhandledErrors)
    app.add_middleware(RequestMetrics, state=state)
    install_openapi_security(app)
    return app

"""The ASGI layer every request passes before routing, authentication or parsing.

``RequestGuard`` bounds the body (413 from ``Content-Length`` alone, or as soon as a streamed
body passes the limit — never more than the limit is held in memory — and 408 when it takes
longer than ``AI_AGENTS_BODY_READ_TIMEOUT_S``; both close the connection), refuses NUL in the path
and query, and decodes JSON and URL-encoded form bodies under the rules of
``serve_app.guards.input_rules`` so that no route ever sees input that PostgreSQL or the JSON
decoder would turn into a 500. A refusal is JSON ``{"detail"}``, or a small HTML page for a
browser's form (``Accept: text/html``). The body it read is replayed to the app unchanged
(webhook signatures cover the raw bytes).

``UnhandledErrors`` turns an exception that escaped everything else into a logged 500 with the
traceback, *without re-raising*: Starlette's own error middleware re-raises after answering,
and uvicorn then closes the connection, so the next request a client sends on the same
keep-alive connection is reset.
"""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.text.storable import text_problem
from serve_app.feedback_pages import refused_form_page
from serve_app.guards.input_rules import BadInput, check_form, decode_json, unicode_error

log = logging.getLogger(__name__)


async def send_json(
    send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def route_label(scope: Scope) -> str:
    """The matched route's template (``/f/{token}``) for log lines, never the path itself: a
    path can carry a credential (a feedback link's token)."""
    return getattr(scope.get("route"), "path", None) or "(unmatched route)"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _is_json(content_type: bytes | None) -> bool:
    """No declared type counts: FastAPI parses such a body as JSON too."""
    if content_type is None:
        return True
    media = content_type.split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _is_form(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    return content_type.split(b";")[0].strip().lower() == b"application/x-www-form-urlencoded"


def _wants_html(scope: Scope) -> bool:
    accept = (_header(scope, b"accept") or b"").lower()
    return b"text/html" in accept


def _readable(detail: object) -> str:
    """A 422's ``[{"loc", "msg"}]`` as one sentence for a page."""
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(map(str, item.get('loc', [])[1:])) or 'form'}: {item.get('msg', '')}"
            for item in detail
            if isinstance(item, dict)
        )
    return str(detail)


def check_path_and_query(scope: Scope) -> None:
    """A ``%00`` in the path (a tenant id) or in a query parameter is refused like a NUL in
    a body. Lone surrogates cannot arrive here: percent-decoding replaces invalid UTF-8."""
    problem = text_problem(scope.get("path", ""))
    if problem is not None:
        raise unicode_error(["path"], problem)
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            problem = text_problem(key) or text_problem(value)
            if problem is not None:
                raise unicode_error(["query", key.replace("\x00", "")], problem)


class RequestGuard:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it is on the hot webhook path)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.body_timeout_s = body_timeout_s

    def _too_large(self) -> BadInput:
        return BadInput(413, f"Request body larger than {self.limit} bytes")

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, bool]:
        """The whole body, or a 413 as soon as it is known to exceed the limit. Returns the
        body and whether the client disconnected while sending it."""
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                raise BadInput(400, "Invalid Content-Length") from None
            if length > self.limit:
                raise self._too_large()
            if length == 0:
                return b"", False
        elif _header(scope, b"transfer-encoding") is None:
            return b"", False
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return b"", True
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.limit:
                        raise self._too_large()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks), False
        except TimeoutError:
            raise BadInput(
                408, f"Request body not received within {self.body_timeout_s:g} s"
            ) from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_path_and_query(scope)
            body, disconnected = await self._read_body(scope, receive)
            if disconnected:
                return
            content_type = _header(scope, b"content-type")
            if body and _is_json(content_type):
                decode_json(body)
            elif body and _is_form(content_type):
                check_form(body)
        except BadInput as exc:
            if (
                exc.status_code not in (408, 413)
                and _is_form(_header(scope, b"content-type"))
                and _wants_html(scope)
            ):
                page = refused_form_page(exc.status_code, _readable(exc.detail))
                await page(scope, receive, send)
                return
            # the unread rest of an oversized body is not drained: uvicorn closes the
            # connection after answering a request whose body it has not fully received
            await send_json(
                send,
                exc.status_code,
                {"detail": exc.detail},
                [(b"connection", b"close")] if exc.status_code in (408, 413) else None,
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class UnhandledErrors:
    """The last resort: log the traceback, answer 500, keep the connection usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error(
                "unhandled error on %s %s", scope.get("method"), route_label(scope), exc_info=exc
            )
            if started:  # half a response is on the wire: only closing can end it
                raise
            await send_json(send, 500, {"detail": "Internal server error"})

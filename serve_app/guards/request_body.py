"""Read a request body with a hard size cap, before anything parses it."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request

from serve_app.guards.input_rules import BadInput, decode_json


async def read_limited_body(request: Request, limit: int) -> bytes:
    """413 as soon as the body is known to exceed ``limit``; never buffers more than that."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, f"Request body larger than {limit} bytes")
        except ValueError:
            raise HTTPException(400, "Invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"Request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The webhook's JSON, under the same rules as every other body (``input_rules``): the
    request guard checked bodies declared as JSON already, this covers any other type."""
    try:
        return decode_json(body)
    except BadInput as exc:
        raise HTTPException(exc.status_code, exc.detail) from None

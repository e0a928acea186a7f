"""``POST /v1/embeddings`` (and ``/api/v1/embeddings``) for the LLM simulator.

The vectors are real: the offline model of ``core.wordllama``, which the service uses by
default, cut to the requested ``dimensions`` and re-normalised, so a service pointed at the
simulator's ``/embeddings`` ranks tickets meaningfully and tests exercise the remote provider
over real HTTP. Auth, request records, latency and the rate-limit / server-error / timeout
faults work as for chat completions.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from core import wordllama
from simulators.llm.state import LLMSimulatorState

MAX_INPUTS = 2048


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": status, "message": message}}, status_code=status, headers=headers
    )


def _inputs(body: Any) -> list[str] | str:
    """The texts, or the 400 message naming what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' is required and must be a non-empty string"
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or len(texts) > MAX_INPUTS:
        return f"'input' must be a string or an array of 1-{MAX_INPUTS} strings"
    if not all(isinstance(t, str) and t for t in texts):
        return "'input' items must be non-empty strings"
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or not 1 <= dims <= wordllama.DIMENSIONS):
        return f"'dimensions' must be an integer from 1 to {wordllama.DIMENSIONS}"
    return texts


def _cut(vector: list[float], dims: int) -> list[float]:
    head = vector[:dims]
    norm = math.sqrt(sum(x * x for x in head)) or 1.0
    return [x / norm for x in head]


def register_embeddings(app: FastAPI, state: LLMSimulatorState) -> None:
    async def embeddings(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        authorized = scheme.lower() == "bearer" and state.key_accepted(key.strip())
        record = state.new_record(request.url.path, headers, authorized)
        if not authorized:
            record.status = 401
            return _error(401, "Invalid or missing API key")
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        texts = _inputs(body)
        if isinstance(texts, str):
            record.status = 400
            return _error(400, texts)
        record.model = body["model"]
        record.body = {k: v for k, v in body.items() if k != "input"}
        record.messages = [{"role": "user", "content": t} for t in texts]
        delay = state.sample_latency()
        if delay > 0:
            await asyncio.sleep(delay)
        fault, _served = state.pick_fault([body["model"]])
        record.fault = fault.kind if fault else None
        if fault is not None and fault.kind == "rate_limit":
            record.status = 429
            return _error(429, "Rate limit exceeded", {"Retry-After": str(fault.retry_after or 1)})
        if fault is not None and fault.kind == "server_error":
            record.status = fault.status or 502
            return _error(record.status, "Server error")
        if fault is not None and fault.kind == "timeout":
            await asyncio.sleep(
                fault.seconds if fault.seconds is not None else state.timeout_hang_s
            )
        dims = body.get("dimensions") or wordllama.DIMENSIONS
        vectors = await asyncio.to_thread(wordllama.embed, texts)
        record.status = 200
        tokens = sum(len(t.split()) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": _cut(v, dims)}
                    for i, v in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    app.add_api_route("/v1/embeddings", embeddings, methods=["POST"])
    app.add_api_route("/api/v1/embeddings", embeddings, methods=["POST"])

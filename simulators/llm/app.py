"""OpenAI/OpenRouter-compatible chat-completions server with injectable faults.

Answers ``POST /v1/chat/completions`` (OpenAI base URL ``http://host:port/v1``) and
``POST /api/v1/chat/completions`` (OpenRouter base URL ``http://host:port/api/v1``), checking
what the ``openai`` client really sends and answering the way OpenRouter does, including its
failure modes: error bodies ``{"error":{"code","message","metadata"}}`` with the HTTP status
equal to the code, ``Retry-After`` on 429/503, 402 for missing credits, and HTTP 200 responses
that carry an ``error`` after generation started. Latency is an async sleep so one process can
hold many slow calls at once, as a benchmark needs.

Each key also has a rate limit and a credit (``simulators/llm/key_account.py``: 429 with
``Retry-After`` beyond the key's requests per minute or concurrent requests, 402 once its credit
is spent) and ``GET /api/v1/key`` reports what the key has left, as OpenRouter's does; set them
with ``PUT /_sim/key-limits``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from simulators.llm.embeddings_route import register_embeddings
from simulators.llm.key_account import KeyLimits
from simulators.llm.responder import (
    MALFORMED,
    NOT_JSON,
    build_enhancement,
    hallucinated,
    message_text,
    parse_prompt,
)
from simulators.llm.state import FAULT_KINDS, Fault, LLMSimulatorState, RequestRecord

_ROLES = {"system", "user", "assistant", "tool", "developer"}
_SERVER_ERROR_MESSAGES = {
    500: "Internal server error",
    502: "Provider returned error: upstream model is down",
    503: "No available provider meets the routing requirements",
}


class FaultSpec(BaseModel):
    kind: str = Field(description=", ".join(FAULT_KINDS))
    count: int | None = 1
    probability: float | None = None
    model: str | None = None
    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    seconds: float | None = None
    citation: str = "ticket:999999"


class SimConfig(BaseModel):
    latency_s: float | None = Field(default=None, ge=0)
    jitter_pct: float | None = Field(default=None, ge=0, le=100)
    api_keys: list[str] | None = None
    any_key: bool = False  # true: accept any non-empty key (api_keys ignored)
    timeout_hang_s: float | None = Field(default=None, ge=0)


class KeyLimitsSpec(BaseModel):
    """The key's limits as a whole (an omitted field: no limit of that kind)."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    credits_usd: float | None = Field(default=None, ge=0)
    key_limit_usd: float | None = Field(default=None, ge=0)


def _error(
    status: int,
    message: str,
    *,
    metadata: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata:
        error["metadata"] = metadata
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _validate(body: Any) -> str | None:
    """The request shape the openai client sends; None when fine, else the 400 message."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' is required and must be a non-empty string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' is required and must be a non-empty array"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            return f"messages[{i}].role must be one of {sorted(_ROLES)}"
        if not isinstance(m.get("content"), str | list):
            return f"messages[{i}].content must be a string or an array of parts"
    models = body.get("models")
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(x, str) for x in models)
    ):
        return "'models' must be an array of model ids"
    return None


def _retry_headers(fault: Fault) -> dict[str, str]:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        value = fault.retry_after
        headers["Retry-After"] = str(int(value)) if float(value).is_integer() else str(value)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    return headers


def _completion(
    state: LLMSimulatorState,
    record: RequestRecord,
    model: str,
    content: str,
    *,
    finish_reason: str = "stop",
    error: dict[str, Any] | None = None,
) -> JSONResponse:
    prompt_chars = sum(len(message_text(m.get("content"))) for m in record.messages)
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = len(content) // 4
    cost = (
        prompt_tokens * state.prompt_price_per_mtok
        + completion_tokens * state.completion_price_per_mtok
    ) / 1_000_000
    record.cost_usd = round(cost, 10)
    generation_id = f"gen-sim-{record.seq}"
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": finish_reason,
        "native_finish_reason": finish_reason,
        "logprobs": None,
    }
    body: dict[str, Any] = {
        "id": generation_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "provider": state.provider_name,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": round(cost, 10),
            "is_byok": False,
        },
    }
    if error is not None:
        body["error"] = error
        choice["error"] = error
    return JSONResponse(
        body, headers={"X-Generation-Id": generation_id, "x-request-id": f"req-sim-{record.seq}"}
    )


async def _apply(
    state: LLMSimulatorState, record: RequestRecord, fault: Fault | None, model: str
) -> Response:
    kind = fault.kind if fault else None
    if fault is None or kind in ("malformed", "not_json", "hallucinate", "timeout"):
        if kind == "timeout":
            await asyncio.sleep(
                fault.seconds if fault and fault.seconds is not None else state.timeout_hang_s
            )
        answer = build_enhancement(parse_prompt(record.messages))
        if kind == "malformed":
            content = json.dumps(MALFORMED)
        elif kind == "not_json":
            content = NOT_JSON
        else:
            if kind == "hallucinate" and fault is not None:
                answer = hallucinated(answer, fault.citation)
            content = json.dumps(answer)
        return _completion(state, record, model, content)
    if kind == "rate_limit":
        return _error(429, "Rate limit exceeded: too many requests", headers=_retry_headers(fault))
    if kind == "no_credits":
        return _error(402, "Insufficient credits", metadata={"limit_source": "openrouter_credits"})
    if kind == "server_error":
        status = fault.status or 502
        meta = {"provider_name": state.provider_name, "raw": "upstream error"}
        return _error(
            status,
            _SERVER_ERROR_MESSAGES.get(status, "Server error"),
            metadata=meta if status == 502 else None,
            headers=_retry_headers(fault),
        )
    if kind == "error_body":
        return _completion(
            state,
            record,
            model,
            "",
            finish_reason="error",
            error={"code": 502, "message": "Provider disconnected mid-generation"},
        )
    return _completion(state, record, model, "")  # empty_content


def create_app(state: LLMSimulatorState | None = None) -> FastAPI:
    """The ASGI app; keep ``state`` to inject faults and inspect requests in-process."""
    state = state if state is not None else LLMSimulatorState()
    app = FastAPI(
        title="LLM simulator (OpenAI/OpenRouter compatible)", docs_url=None, redoc_url=None
    )
    app.state.sim = state

    def bearer(request: Request) -> tuple[str, str]:
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        return auth, key.strip() if scheme.lower() == "bearer" else ""

    async def chat_completions(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        auth, key = bearer(request)
        authorized = state.key_accepted(key)
        record = state.new_record(request.url.path, headers, authorized)
        retry = headers.get("x-stainless-retry-count", "")
        record.retry_count = int(retry) if retry.isdigit() else None
        if not authorized:
            record.status = 401
            return _error(
                401, "No auth credentials found" if not auth else "Invalid or disabled API key"
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        problem = _validate(body)
        if problem is not None:
            record.status = 400
            return _error(400, problem)
        record.model = body["model"]
        record.models = body.get("models")
        record.messages = body["messages"]
        record.body = {k: v for k, v in body.items() if k not in ("messages", "model", "models")}
        candidates = list(dict.fromkeys([body["model"], *(body.get("models") or [])]))
        refusal = state.keys.admit(key)
        if refusal is not None:
            record.status = refusal.status
            meta = {"limit_source": refusal.limit_source} if refusal.limit_source else None
            return _error(
                refusal.status, refusal.message, metadata=meta, headers=refusal.headers or None
            )
        try:
            delay = state.sample_latency()
            if delay > 0:
                await asyncio.sleep(delay)
            fault, served = state.pick_fault(candidates)
            record.fault = fault.kind if fault else None
            record.served_model = served
            response = await _apply(state, record, fault, served)
        finally:
            state.keys.finish(key, record.cost_usd)
        record.status = response.status_code
        return response

    async def current_key(request: Request) -> Response:
        """OpenRouter's ``GET /api/v1/key``: the calling key's limit, what is left, usage."""
        auth, key = bearer(request)
        if not state.key_accepted(key):
            return _error(
                401, "No auth credentials found" if not auth else "Invalid or disabled API key"
            )
        return JSONResponse(state.keys.key_info(key))

    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_api_route("/api/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_api_route("/v1/key", current_key, methods=["GET"])
    app.add_api_route("/api/v1/key", current_key, methods=["GET"])
    register_embeddings(app, state)

    @app.get("/_sim/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/_sim/requests")
    async def list_requests() -> dict[str, Any]:
        records = state.requests
        return {"count": len(records), "requests": [r.to_dict() for r in records]}

    @app.delete("/_sim/requests", status_code=204)
    async def clear_requests() -> None:
        state.clear_requests()

    @app.get("/_sim/faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [f.to_dict() for f in state.faults]}

    @app.post("/_sim/faults", status_code=201, response_model=None)
    async def add_fault(spec: FaultSpec) -> dict[str, Any] | JSONResponse:
        try:
            fault = state.add_fault(**spec.model_dump())
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return fault.to_dict()

    @app.delete("/_sim/faults", status_code=204)
    async def clear_faults() -> None:
        state.clear_faults()

    @app.delete("/_sim/faults/{fault_id}", status_code=204, response_model=None)
    async def remove_fault(fault_id: int) -> JSONResponse | None:
        if not state.remove_fault(fault_id):
            return JSONResponse({"detail": "unknown fault id"}, status_code=404)
        return None

    def config_view() -> dict[str, Any]:
        keys = state.api_keys
        return {
            "latency_s": state.latency_s,
            "jitter_pct": state.jitter_pct,
            "api_keys_configured": None if keys is None else len(keys),
            "timeout_hang_s": state.timeout_hang_s,
        }

    @app.get("/_sim/config")
    async def get_config() -> dict[str, Any]:
        return config_view()

    @app.put("/_sim/config")
    async def put_config(cfg: SimConfig) -> dict[str, Any]:
        if cfg.latency_s is not None or cfg.jitter_pct is not None:
            state.set_latency(
                cfg.latency_s if cfg.latency_s is not None else state.latency_s,
                cfg.jitter_pct if cfg.jitter_pct is not None else state.jitter_pct,
            )
        if cfg.any_key:
            state.api_keys = None
        elif cfg.api_keys is not None:
            state.api_keys = set(cfg.api_keys)
        if cfg.timeout_hang_s is not None:
            state.timeout_hang_s = cfg.timeout_hang_s
        return config_view()

    @app.get("/_sim/key-limits")
    async def get_key_limits() -> dict[str, Any]:
        return state.keys.limits.to_dict()

    @app.put("/_sim/key-limits")
    async def put_key_limits(spec: KeyLimitsSpec) -> dict[str, Any]:
        state.keys.configure(KeyLimits(**spec.model_dump()))
        return state.keys.limits.to_dict()

    @app.get("/_sim/key-stats")
    async def key_stats(key: str) -> dict[str, Any]:
        """Requests admitted, refused with 429 / 402, in flight and spent, for one key."""
        return state.keys.stats(key)

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return app

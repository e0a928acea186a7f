"""Sending webhooks the way a tenant's configured SDP instance would.

SDP cannot sign natively; tenants either add a static `X-Webhook-Token` header to the webhook
custom action, or compute an HMAC in a Deluge function (`X-Timestamp` plus
`X-Signature: sha256=<HMAC-SHA256 of "{timestamp}." + raw body>`). The sender signs the
exact bytes it puts on the wire, so a receiver that re-serialises JSON before verifying fails
against it, as it would in production. The signature itself comes from
``core.webhook_auth.sign``, the one signer the service's verifier is tested
against.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from core.tenant_types import WebhookAuthMode
from core.webhook_auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOKEN_HEADER,
    SignatureEncoding,
    sign,
)

__all__ = [
    "PayloadShape",
    "SignatureEncoding",
    "build_payload",
    "encode_payload",
    "flat_payload",
    "send_webhook",
    "send_webhook_async",
    "sign",
    "v3_payload",
    "webhook_headers",
]

PayloadShape = Literal["v3", "flat"]
USER_AGENT = "ServiceDeskPlus-Webhook-Simulator/1.0"


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def webhook_headers(
    body: bytes,
    mode: WebhookAuthMode,
    secret: str,
    *,
    timestamp: int | None = None,
    encoding: SignatureEncoding = "hex",
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if mode == "hmac":
        stamp = int(time.time()) if timestamp is None else int(timestamp)
        headers[TIMESTAMP_HEADER] = str(stamp)
        headers[SIGNATURE_HEADER] = sign(secret, stamp, body, encoding)
    elif mode == "token":
        headers[TOKEN_HEADER] = secret
    else:
        raise ValueError(f"mode must be 'hmac' or 'token', not {mode!r}")
    return headers


def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    mode: WebhookAuthMode,
    secret: str,
    *,
    timestamp: int | None = None,
    encoding: SignatureEncoding = "hex",
    timeout_s: float = 10.0,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """POST one webhook synchronously; `timestamp` overrides now (to test staleness)."""
    body = encode_payload(payload)
    headers = webhook_headers(body, mode, secret, timestamp=timestamp, encoding=encoding)
    if client is not None:
        return client.post(url, content=body, headers=headers, timeout=timeout_s)
    with httpx.Client() as own:
        return own.post(url, content=body, headers=headers, timeout=timeout_s)


async def send_webhook_async(
    url: str,
    payload: Mapping[str, Any],
    mode: WebhookAuthMode,
    secret: str,
    *,
    timestamp: int | None = None,
    encoding: SignatureEncoding = "hex",
    timeout_s: float = 10.0,
    client: httpx.AsyncClient | None = None,
) -> httpx.Response:
    """The async twin of `send_webhook`, for load generators and the control API."""
    body = encode_payload(payload)
    headers = webhook_headers(body, mode, secret, timestamp=timestamp, encoding=encoding)
    if client is not None:
        return await client.post(url, content=body, headers=headers, timeout=timeout_s)
    async with httpx.AsyncClient() as own:
        return await own.post(url, content=body, headers=headers, timeout=timeout_s)


def _iso(time_obj: Any) -> str | None:
    if not isinstance(time_obj, Mapping) or time_obj.get("value") in (None, ""):
        return None
    return datetime.fromtimestamp(int(time_obj["value"]) / 1000, UTC).isoformat()


def v3_payload(request: Mapping[str, Any], *, event: str | None = None) -> dict[str, Any]:
    """What `$COMPLETE_V3_JSON_FILE` (or a custom action sending the v3 object) delivers."""
    payload: dict[str, Any] = {"request": copy.deepcopy(dict(request))}
    if event:
        payload["event"] = event
    return payload


def flat_payload(request: Mapping[str, Any], *, event: str | None = None) -> dict[str, Any]:
    """A hand-templated webhook body built from `$` variables; carries resolution if any."""
    priority = request.get("priority")
    payload: dict[str, Any] = {
        "ticket_id": str(request["id"]),
        "subject": request.get("subject", ""),
        "description": request.get("description", ""),
        "priority": priority.get("name") if isinstance(priority, Mapping) else priority,
        "updated_at": _iso(request.get("last_updated_time")),
    }
    resolution = request.get("resolution")
    if isinstance(resolution, Mapping) and resolution.get("content"):
        payload["resolution"] = resolution["content"]
        payload["resolved_at"] = _iso(request.get("resolved_time"))
    if event:
        payload["event"] = event
    return payload


def build_payload(
    request: Mapping[str, Any], shape: PayloadShape = "v3", *, event: str | None = None
) -> dict[str, Any]:
    if shape == "v3":
        return v3_payload(request, event=event)
    if shape == "flat":
        return flat_payload(request, event=event)
    raise ValueError(f"shape must be 'v3' or 'flat', not {shape!r}")

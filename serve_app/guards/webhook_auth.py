"""Per-tenant webhook authentication over the raw body bytes.

Two modes: `token` (a static `X-Webhook-Token` header) and `hmac` (`X-Timestamp` +
`X-Signature`). The signature is computed by ``core.webhook_signature``, the one signer
senders (the SDP simulator, the load generator, a signing relay) use too.

Every failure that could tell an attacker something (unknown tenant, disabled tenant, wrong
secret, stale timestamp) gets the same 403 body; only absent credentials get 401. Digests are
compared with ``hmac.compare_digest`` and an unknown tenant still costs one HMAC, so timing
does not reveal which tenants exist either.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.tenant_types import WebhookAuthMode
from core.webhook_signature import (
    SIGNATURE_HEADER,
    SIGNATURE_PREFIX,
    TIMESTAMP_HEADER,
    TOKEN_HEADER,
    signature_digest,
)

MISSING = "Missing signature"
INVALID = "Invalid signature"
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_DUMMY_KEY = b"\x00" * 32


@dataclass(frozen=True)
class WebhookCredentials:
    mode: WebhookAuthMode
    secrets: Sequence[str]  # the current secret, then the previous one while in its grace period


class WebhookAuthError(Exception):
    def __init__(self, status_code: int, detail: str, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.detail = detail
        self.reason = reason  # for logs and audit only, never for the response


def _decode_signature(value: str) -> bytes | None:
    value = value.strip()
    if value.lower().startswith(SIGNATURE_PREFIX):
        value = value[len(SIGNATURE_PREFIX) :]
    if _HEX.match(value):
        return bytes.fromhex(value)
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == 32 else None


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    credentials: WebhookCredentials | None,
    *,
    now: float,
    max_skew_s: int = 300,
) -> None:
    """Raise WebhookAuthError unless the request is authentic for this tenant.

    ``credentials`` is None for an unknown or disabled tenant.
    """
    signature = headers.get(SIGNATURE_HEADER.lower())
    timestamp = headers.get(TIMESTAMP_HEADER.lower())
    token = headers.get(TOKEN_HEADER.lower())
    if not token and not (signature and timestamp):
        raise WebhookAuthError(401, MISSING, "no credentials")

    if signature and timestamp:
        provided = _decode_signature(signature)
        secrets = list(credentials.secrets) if credentials and credentials.mode == "hmac" else []
        matched = False
        for secret in secrets or [None]:
            key = secret.encode() if secret else _DUMMY_KEY
            expected = signature_digest(key, timestamp, body)
            if provided is not None and hmac.compare_digest(expected, provided) and secret:
                matched = True
        if credentials is None:
            raise WebhookAuthError(403, INVALID, "unknown or disabled tenant")
        if credentials.mode != "hmac":
            raise WebhookAuthError(403, INVALID, "tenant expects token auth")
        if not matched:
            raise WebhookAuthError(403, INVALID, "signature mismatch")
        try:
            skew = abs(now - int(timestamp))
        except (ValueError, OverflowError):  # OverflowError: 400 digits, correctly signed
            raise WebhookAuthError(403, INVALID, "timestamp not an integer") from None
        if skew > max_skew_s:
            raise WebhookAuthError(403, INVALID, f"timestamp {int(skew)} s away from now")
        return

    secrets = list(credentials.secrets) if credentials and credentials.mode == "token" else []
    matched = False
    for secret in secrets or ["\x00" * 16]:
        if hmac.compare_digest(secret.encode(), (token or "").encode()) and secrets:
            matched = True
    if credentials is None:
        raise WebhookAuthError(403, INVALID, "unknown or disabled tenant")
    if credentials.mode != "token":
        raise WebhookAuthError(403, INVALID, "tenant expects hmac signatures")
    if not matched:
        raise WebhookAuthError(403, INVALID, "token mismatch")

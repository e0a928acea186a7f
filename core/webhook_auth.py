"""How an SDP webhook is signed and verified: the one signer the verifier, the SDP simulator's
sender, the load generator and the tests share, so they cannot drift apart.

SDP cannot sign webhooks natively, so a tenant either sends a static token header from a custom
action (`token` mode) or computes an HMAC in a Deluge function or a signing relay (`hmac`
mode): `X-Timestamp: <unix seconds>` and `X-Signature: sha256=<hex or base64 HMAC-SHA256 of
"{X-Timestamp}." + raw body>`, keyed with the tenant's webhook secret. The signature covers the
exact bytes on the wire, so a receiver must verify before parsing the JSON.

Verification (``verify_webhook``) is per tenant, over the raw body bytes, before any parsing.
Every failure that could tell an attacker something (unknown tenant, disabled tenant, wrong
secret, stale timestamp) gets the same 403; only absent credentials get 401. Digests are
compared with ``hmac.compare_digest`` and an unknown tenant still costs one HMAC, so timing does
not reveal which tenants exist either. After a rotation the previous secret is accepted for a
grace period.

Lives in the core (standard library only) because the service, the simulators and the
benchmarks all need it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from core.tenant_types import WebhookAuthMode

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
TOKEN_HEADER = "X-Webhook-Token"
SIGNATURE_PREFIX = "sha256="

SignatureEncoding = Literal["hex", "base64"]


def signature_digest(key: bytes, timestamp: str | int, body: bytes) -> bytes:
    """The raw 32-byte HMAC-SHA256 of ``"{timestamp}." + body``; the verifier compares this
    against the decoded header in constant time."""
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(
    secret: str | bytes,
    timestamp: str | int,
    body: bytes,
    encoding: SignatureEncoding = "hex",
) -> str:
    """The value a sender puts in ``X-Signature``: ``sha256=`` + the hex (default) or base64
    HMAC-SHA256 of ``"{timestamp}." + body`` keyed with the webhook secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = signature_digest(key, timestamp, body)
    if encoding == "hex":
        return SIGNATURE_PREFIX + digest.hex()
    if encoding == "base64":
        return SIGNATURE_PREFIX + base64.b64encode(digest).decode()
    raise ValueError(f"encoding must be 'hex' or 'base64', not {encoding!r}")


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
    if _HEX.fullmatch(value):
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
        # None stands in for "no secret": the dummy key keeps the timing the same.
        signing_secrets: list[str | None] = (
            list(credentials.secrets) if credentials and credentials.mode == "hmac" else []
        )
        matched = False
        for secret in signing_secrets or [None]:
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

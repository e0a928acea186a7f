"""How an SDP webhook is signed: the one signer the verifier, the SDP simulator's sender, the
load generator and the tests share, so they cannot drift apart.

SDP cannot sign webhooks natively, so a tenant either sends a static token header from a custom
action (`token` mode) or computes an HMAC in a Deluge function or a signing relay (`hmac`
mode): `X-Timestamp: <unix seconds>` and `X-Signature: sha256=<hex or base64 HMAC-SHA256 of
"{X-Timestamp}." + raw body>`, keyed with the tenant's webhook secret. The signature covers the
exact bytes on the wire, so a receiver must verify before parsing the JSON.

Lives in the core (standard library only) because the service, the simulators and the
benchmarks all need it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Literal

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "TIMESTAMP_HEADER",
    "TOKEN_HEADER",
    "SignatureEncoding",
    "sign",
    "signature_digest",
]

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

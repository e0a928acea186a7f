"""The one webhook signer against a vector computed outside Python (``openssl dgst -sha256
-hmac s3cret``), so the signer, the verifier, the simulator and the load generator cannot all
agree on a wrong signature."""

from __future__ import annotations

import pytest

from core.webhook_auth import (
    WebhookAuthError,
    WebhookCredentials,
    sign,
    signature_digest,
    verify_webhook,
)

BODY = b'{"ticket_id": "T-1"}'
HEX = "87d5a640ae94d72f0c137a0e837f94bc351fba532e1e63e44b52f0caa8924ce4"
BASE64 = "h9WmQK6U1y8ME3oOg3+UvDUfulMuHmPkS1LwyqiSTOQ="


def test_sign_matches_openssl_vector_in_both_encodings() -> None:
    assert sign("s3cret", 1_700_000_000, BODY) == f"sha256={HEX}"
    assert sign(b"s3cret", "1700000000", BODY, "base64") == f"sha256={BASE64}"
    assert signature_digest(b"s3cret", 1_700_000_000, BODY) == bytes.fromhex(HEX)


def test_sign_rejects_an_unknown_encoding() -> None:
    with pytest.raises(ValueError, match="encoding"):
        sign("s3cret", 1, BODY, "base32")  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_verifier_accepts_what_the_signer_signs(encoding: str) -> None:
    credentials = WebhookCredentials(mode="hmac", secrets=("s3cret",))
    stamp = 1_700_000_000
    headers = {"x-timestamp": str(stamp), "x-signature": sign("s3cret", stamp, BODY, encoding)}  # type: ignore[arg-type]
    verify_webhook(headers, BODY, credentials, now=stamp + 10)
    with pytest.raises(WebhookAuthError) as refused:
        verify_webhook(headers, BODY + b" ", credentials, now=stamp + 10)
    assert refused.value.status_code == 403 and refused.value.reason == "signature mismatch"

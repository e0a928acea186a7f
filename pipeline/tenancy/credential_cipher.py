"""Encryption of tenant secrets at rest, and hashing of bearer tokens.

Webhook secrets and SDP keys must be recoverable (we sign/compare and call SDP with them), so
they are encrypted with ``MultiFernet``: the first key encrypts, every key decrypts, and
``rotate`` re-encrypts under the newest key. API and admin tokens are only ever compared, so
only their SHA-256 is stored (they are 256-bit random values: no salt or slow hash needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class CipherError(RuntimeError):
    pass


class CredentialCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise CipherError(
                "AI_AGENTS_ENCRYPTION_KEYS is empty: at least one Fernet key is needed"
            )
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except (ValueError, TypeError) as exc:
            raise CipherError("AI_AGENTS_ENCRYPTION_KEYS holds an invalid Fernet key") from exc

    @classmethod
    def from_csv(cls, csv: str) -> CredentialCipher:
        return cls([k for k in csv.split(",") if k.strip()])

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken as exc:
            raise CipherError(
                "stored credential cannot be decrypted with the configured keys"
            ) from exc

    def rotate(self, token: bytes) -> bytes:
        return self._fernet.rotate(bytes(token))


def new_encryption_key() -> str:
    return Fernet.generate_key().decode()


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), expected_hash)

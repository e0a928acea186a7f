"""Signed, expiring one-click feedback links for the end of every note.

A technician will not call an API with a tenant token, so each note carries seven links
(thumbs up, thumbs down, rating 1-5) to ``{AI_AGENTS_PUBLIC_URL}/f/{token}``. The token is
the only credential: it names the tenant, the enhancement and the answer, carries an expiry
and an HMAC-SHA256 over all of that. It therefore lets its holder do exactly one thing -
confirm that answer for that enhancement - and nothing else.

Key material: no new secret to manage. The HMAC key is derived from each Fernet key of
``AI_AGENTS_ENCRYPTION_KEYS`` (newest first). Links are signed with the newest key and
verified against every key in the list, so prepending a new key (the documented rotation)
leaves the links in notes already written working until the old key is removed.

The token is plain text of URL-safe characters only (``[a-z0-9.-_]``): it survives HTML
escaping, nh3's sanitising, e-mail clients and a technician's copy and paste unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Answer = Literal["up", "down", "1", "2", "3", "4", "5"]
ANSWERS: tuple[Answer, ...] = ("up", "down", "1", "2", "3", "4", "5")
ANSWER_LABELS: dict[str, str] = {
    "up": "👍 Helpful",
    "down": "👎 Not helpful",
    **{str(n): f"{n}/5" for n in range(1, 6)},
}
_VERSION = "v1"
_KEY_CONTEXT = b"ai-agents feedback-link key v1"
# Always ``fullmatch``: ``$`` would also match before a trailing newline (``/f/<token>%0a``).
_TOKEN_RE = re.compile(
    r"v1\.(?P<tenant>[a-z0-9][a-z0-9-]{1,62})\.(?P<enh>[0-9a-f]{32})\.(?P<answer>up|down|[1-5])"
    r"\.(?P<exp>[0-9]{1,12})\.(?P<sig>[A-Za-z0-9_-]{43})"
)


class LinkError(ValueError):
    """Why a token is refused; ``status`` is the HTTP status the page answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LinkClaims:
    tenant_id: str
    enhancement_id: uuid.UUID
    answer: Answer
    expires_at: int

    @property
    def feedback_type(self) -> str:
        return {"up": "thumbs_up", "down": "thumbs_down"}.get(self.answer, "rating")

    @property
    def rating_value(self) -> int | None:
        return int(self.answer) if self.answer.isdigit() else None

    @property
    def vote_slot(self) -> str:
        """One link vote per enhancement per kind: a thumb, and a rating (latest confirm wins)."""
        return "rating" if self.answer.isdigit() else "thumbs"


def derive_link_keys(encryption_keys_csv: str) -> list[bytes]:
    """One HMAC key per Fernet key, newest first; a Fernet key is urlsafe base64 of 32 bytes."""
    keys: list[bytes] = []
    for raw in encryption_keys_csv.split(","):
        raw = raw.strip()
        if not raw:
            continue
        material = base64.urlsafe_b64decode(raw.encode())
        keys.append(hmac.new(material, _KEY_CONTEXT, hashlib.sha256).digest())
    if not keys:
        raise ValueError("no encryption key to derive the feedback-link key from")
    return keys


class FeedbackLinkSigner:
    def __init__(
        self,
        keys: list[bytes],
        *,
        ttl_s: float = 30 * 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._keys = keys
        self.ttl_s = ttl_s
        self._now = clock

    @classmethod
    def from_encryption_keys(
        cls, encryption_keys_csv: str, *, ttl_days: float = 30.0
    ) -> FeedbackLinkSigner:
        return cls(derive_link_keys(encryption_keys_csv), ttl_s=ttl_days * 86400.0)

    def token(
        self,
        tenant_id: str,
        enhancement_id: str | uuid.UUID,
        answer: Answer,
        *,
        expires_at: int | None = None,
    ) -> str:
        if answer not in ANSWERS:
            raise ValueError(f"unknown answer {answer!r}")
        exp = int(expires_at if expires_at is not None else self._now() + self.ttl_s)
        payload = f"{_VERSION}.{tenant_id}.{uuid.UUID(str(enhancement_id)).hex}.{answer}.{exp}"
        if not _TOKEN_RE.fullmatch(f"{payload}.{'A' * 43}"):
            raise ValueError("tenant id cannot be put in a feedback link")
        return f"{payload}.{_sign(self._keys[0], payload)}"

    def verify(self, token: str) -> LinkClaims:
        """The claims of a genuine, unexpired token; :class:`LinkError` otherwise."""
        match = _TOKEN_RE.fullmatch(token or "")
        if match is None:
            raise LinkError(400, "This feedback link is malformed. Open it from the note again.")
        payload = token[: match.start("sig") - 1]
        signature = match.group("sig")
        if not any(hmac.compare_digest(_sign(key, payload), signature) for key in self._keys):
            raise LinkError(403, "This feedback link is not valid. Open it from the note again.")
        expires_at = int(match.group("exp"))
        if expires_at < self._now():
            raise LinkError(410, "This feedback link has expired.")
        return LinkClaims(
            tenant_id=match.group("tenant"),
            enhancement_id=uuid.UUID(match.group("enh")),
            answer=match.group("answer"),  # type: ignore[arg-type]
            expires_at=expires_at,
        )

    def links(
        self, public_url: str, tenant_id: str, enhancement_id: str | uuid.UUID
    ) -> list[tuple[Answer, str]]:
        """The seven (answer, URL) pairs a note ends with, all with the same expiry."""
        exp = int(self._now() + self.ttl_s)
        base = public_url.rstrip("/")
        return [
            (a, f"{base}/f/{self.token(tenant_id, enhancement_id, a, expires_at=exp)}")
            for a in ANSWERS
        ]


def _sign(key: bytes, payload: str) -> str:
    digest = hmac.new(key, f"feedback-link:{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")

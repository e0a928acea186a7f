"""The secret redaction's prefilter (``_MAYBE_LABELLED``, ``_MAYBE_TOKEN``) only skips text no
secret pattern can match: with it and without it, every text is redacted the same, including
text folded by case the way ``re.IGNORECASE`` folds it ("ſ", the Kelvin sign)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.text.redaction import (
    _redact_every_secret,
    _redact_secrets,
    redact_pii,
    redact_secrets_only,
)

PIECES = [
    *"aZ09 _-.:=\"'/@\n",
    "password",
    "PaSS",
    "paſſword",
    "\u212aey",
    "api_key",
    "token",
    "pin",
    "OTP",
    "sas",
    "pw",
    "secret",
    " is ",
    " set to ",
    "Bearer ",
    "Authorization: Basic ",
    "zoho-oauthtoken ",
    "https://user:",
    "@host",
    "AKIA",
    "ASIA",
    "sk-",
    "sk-proj-",
    "ghp_",
    "github_pat_",
    "xoxb-",
    "AIza",
    "eyJ",
    ".eyJ",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    "ABCDEFGHIJKLMNOP",
    "abcdefghij0123456789abcdefghij",
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_the_prefilter_changes_nothing(text: str) -> None:
    with_filter: Counter[str] = Counter()
    without: Counter[str] = Counter()
    assert _redact_secrets(text, with_filter) == _redact_every_secret(text, without)
    assert with_filter == without


KEYS = [
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "pw",
    "pass",
    "secret",
    "client_secret",
    "client-secret",
    "api_key",
    "apikey",
    "access_key",
    "access_key_id",
    "secret_key",
    "secret_access_key",
    "private_key",
    "access_token",
    "refresh_token",
    "auth_token",
    "api_token",
    "session_token",
    "bearer_token",
    "id_token",
    "token",
    "sas",
    "shared_key",
    "pin",
    "otp",
]
TOKENS = (
    "AKIAABCDEFGHIJKLMNOP",
    "ASIAABCDEFGHIJKLMNOP",
    "AGPAABCDEFGHIJKLMNOP",
    "AIDAABCDEFGHIJKLMNOP",
    "AROAABCDEFGHIJKLMNOP",
    "AIPAABCDEFGHIJKLMNOP",
    "ANPAABCDEFGHIJKLMNOP",
    "ANVAABCDEFGHIJKLMNOP",
    "sk-abcdefghij0123456789",
    "sk-or-v1-abcdefghij0123456789",
    "ghp_abcdefghij0123456789abcdefghij01",
    "gho_abcdefghij0123456789abcdefghij01",
    "github_pat_abcdefghij0123456789abcdefghij",
    "xoxb-abcdefghij0123",
    "AIza" + "a" * 35,
    "eyJabcdefghij.eyJabcdefghij.abcdefghij",
    "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
    "Bearer abcdefgh12",
    "Zoho-oauthtoken abcdefgh12",
    "Authorization: Basic abcdefgh12",
    "https://admin:hunter2@host.example",
)


def _samples() -> list[str]:
    samples = list(TOKENS)
    for key in KEYS:
        for form in (key, key.upper(), key.replace("s", "\u017f").replace("k", "\u212a")):
            for template in ("{k}=v4lue", '"{k}": "v4lue"', "{k} is v4lue", "{k} was set to v4lue"):
                samples.append(template.format(k=form))
    return samples


def test_every_secret_pattern_passes_the_prefilter():
    """One sample of every key word and token format, in capitals and folded by case: each is
    redacted, and the same with the prefilter as without (so no word the patterns know is
    missing from it)."""
    for text in _samples():
        with_filter: Counter[str] = Counter()
        without: Counter[str] = Counter()
        redacted = _redact_every_secret(text, without)
        assert without["secret"] >= 1, text
        assert _redact_secrets(text, with_filter) == redacted, text
        assert with_filter == without, text


def test_what_the_prefilter_skips_and_what_it_does_not():
    for plain in ("webhook accepted", "tenant-a", "INC-1042", "3f2a6c1e-8b7d-4c3a-9e1f"):
        assert redact_secrets_only(plain) == plain
    for secret, redacted in (
        ("password=hunter2", "password=[SECRET]"),
        ("paſſword=hunter2", "paſſword=[SECRET]"),
        ("id AKIAABCDEFGHIJKLMNOP here", "id [SECRET] here"),
        ("Authorization: Bearer abcdefgh12345", "Authorization: Bearer [SECRET]"),
    ):
        assert redact_secrets_only(secret) == redacted
        assert redact_pii(secret) == redacted

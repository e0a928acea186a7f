"""One-click feedback links: signed, expiring, rotation-safe tokens, and notes that carry them
intact through nh3 (as HTML for SDP) and as plain text (for copying)."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser

import pytest

from pipeline.models import SimilarTicket, SynthesisResult, Ticket, TicketContext
from pipeline.note.feedback_links import (
    ANSWER_LABELS,
    ANSWERS,
    FeedbackLinkSigner,
    LinkError,
    derive_link_keys,
)
from pipeline.note.renderer import render_note
from pipeline.tenancy.credential_cipher import new_encryption_key

ENH = uuid.UUID("7d1f6c1e-8a56-4c1b-9d0e-3b8f6f4d2a11")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def _signer(keys: str, now: float = 1_000_000.0) -> FeedbackLinkSigner:
    """Links valid for one day, on a frozen clock."""
    return FeedbackLinkSigner(derive_link_keys(keys), ttl_s=86400, clock=lambda: now)


def test_a_token_verifies_to_exactly_what_was_signed() -> None:
    signer = _signer(new_encryption_key())
    for answer in ANSWERS:
        claims = signer.verify(signer.token("acme", ENH, answer))
        assert (claims.tenant_id, claims.enhancement_id, claims.answer) == ("acme", ENH, answer)
    assert signer.verify(signer.token("acme", ENH, "4")).rating_value == 4
    assert signer.verify(signer.token("acme", ENH, "up")).feedback_type == "thumbs_up"
    assert signer.verify(signer.token("acme", ENH, "down")).vote_slot == "thumbs"


@pytest.mark.parametrize("change", ["tenant", "enhancement", "answer", "expiry", "signature"])
def test_changing_any_part_of_a_token_is_refused(change: str) -> None:
    signer = _signer(new_encryption_key())
    version, tenant, enh, answer, exp, sig = signer.token("acme", ENH, "down").split(".")
    parts = {
        "tenant": "globex",
        "enhancement": uuid.uuid4().hex,
        "answer": "up",
        "expiry": str(int(exp) + 10**6),
        "signature": sig[::-1],
    }
    fields = [version, tenant, enh, answer, exp, sig]
    index = ["tenant", "enhancement", "answer", "expiry", "signature"].index(change) + 1
    fields[index] = parts[change]
    with pytest.raises(LinkError) as refused:
        signer.verify(".".join(fields))
    assert refused.value.status == 403


def test_garbage_is_malformed_and_an_old_token_expired() -> None:
    keys = new_encryption_key()
    for junk in ("", "x", "v1.acme", "v1.ACME." + "0" * 32 + ".up.1." + "A" * 43):
        with pytest.raises(LinkError) as refused:
            _signer(keys).verify(junk)
        assert refused.value.status == 400
    token = _signer(keys, now=1_000_000).token("acme", ENH, "up")
    assert _signer(keys, now=1_000_000 + 86399).verify(token).answer == "up"
    with pytest.raises(LinkError) as refused:
        _signer(keys, now=1_000_000 + 86401).verify(token)
    assert refused.value.status == 410


def test_rotation_keeps_old_links_working_until_the_old_key_is_removed() -> None:
    old, new = new_encryption_key(), new_encryption_key()
    token = _signer(old).token("acme", ENH, "5")
    assert _signer(f"{new},{old}").verify(token).answer == "5"  # rotation: new key prepended
    fresh = _signer(f"{new},{old}").token("acme", ENH, "5")
    assert _signer(new).verify(fresh).answer == "5"  # signed with the newest key
    with pytest.raises(LinkError):
        _signer(new).verify(token)  # the old key was retired
    with pytest.raises(LinkError):
        _signer(new_encryption_key()).verify(fresh)  # another deployment's key


def _note(links: list[tuple[str, str]] | None) -> tuple[str, str]:
    context = TicketContext(
        ticket=Ticket(ticket_id="4711", subject="VPN drops", description="VPN drops hourly"),
        similar_tickets=[
            SimilarTicket(
                ticket_id="12",
                subject="VPN <b>drop</b>",
                resolution="Raised DPD interval",
                score=0.5,
            )
        ],
    )
    note = render_note(
        enhancement_id=str(ENH),
        context=context,
        synthesis=SynthesisResult(mode="context_only", reason="no key"),
        max_words=60,
        feedback_links=links,
    )
    return note.html, note.text


def test_note_links_survive_sanitising_and_copying_and_are_never_trimmed() -> None:
    signer = _signer(new_encryption_key())
    links = [
        (ANSWER_LABELS[a], url)
        for a, url in signer.links("https://ai.example.com/base", "acme", ENH)
    ]
    note_html, note_text = _note(links)
    parser = _Links()
    parser.feed(note_html)
    urls = [url for _, url in links]
    assert [h for h in parser.hrefs if "/f/" in h] == urls  # exact, in order, after nh3
    for url in urls:
        assert url.startswith("https://ai.example.com/base/f/v1.acme.")
        assert f": {url}" in note_text  # the text form carries the whole URL
        assert signer.verify(url.rsplit("/f/", 1)[1]).enhancement_id == ENH
    assert "Was this note useful?" in note_html and "👍 Helpful" in note_html
    assert note_html.index("Was this note useful?") < note_html.index(f"enhancement {ENH}")


def test_without_a_public_url_the_note_has_no_links_and_unsafe_urls_are_dropped() -> None:
    note_html, note_text = _note(None)
    assert "/f/" not in note_html and "useful" not in note_text
    note_html, _ = _note([("👍 Helpful", "javascript:alert(1)")])
    assert "javascript" not in note_html and "useful" not in note_html


def test_public_url_must_be_http_or_https() -> None:
    from pydantic import ValidationError

    from core.settings import Settings

    assert Settings(public_url="https://ai.example.com/").public_url == "https://ai.example.com"
    assert Settings(public_url="").public_url is None
    for bad in ("javascript:alert(1)", "ftp://x.example", "ai.example.com", "https://"):
        with pytest.raises(ValidationError, match="http:// or https://"):
            Settings(public_url=bad)

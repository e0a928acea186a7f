"""The prompt's Redactor: the ticket's requester (named exactly by SDP's payload) replaced
wherever the text names them, and every placeholder counted by kind, never by value."""

from __future__ import annotations

import pytest

from pipeline.text.redaction import (
    CARD,
    EMAIL,
    KINDS,
    PHONE,
    REQUESTER,
    REQUESTER_EMAIL,
    SECRET,
    Redactor,
    redact_pii,
)


def test_requester_name_and_email_wherever_they_appear() -> None:
    redactor = Redactor("Dana Whitfield", "dana.whitfield@acme.example")
    text = (
        "Hi, Dana Whitfield here (DANA.WHITFIELD@ACME.EXAMPLE). Whitfield, Dana is locked out; "
        "please call dana back. Regards, Dana\nCC: ops@acme.example, WHITFIELD"
    )
    assert redactor(text) == (
        f"Hi, {REQUESTER} here ({REQUESTER_EMAIL}). {REQUESTER} is locked out; "
        f"please call dana back. Regards, {REQUESTER}\nCC: {EMAIL}, {REQUESTER}"
    )
    assert dict(redactor.counts) == {"requester_email": 1, "requester_name": 4, "email": 1}


def test_name_parts_that_are_everyday_words_only_go_as_the_full_name() -> None:
    redactor = Redactor("Will Brown", "will.brown@globex.example")
    text = "Will Brown says the printer will not print brown paper. Will you check?"
    assert redactor(text) == (
        f"{REQUESTER} says the printer will not print brown paper. Will you check?"
    )


def test_parts_are_words_not_substrings_and_short_or_missing_names_do_nothing() -> None:
    assert Redactor("Ann Smith")("Smithfield annex, Annual report") == (
        "Smithfield annex, Annual report"
    )
    for name in (None, "", "  ", "Al"):
        assert Redactor(name, None)("Al called about Al's laptop") == (
            "Al called about Al's laptop"
        )
    assert Redactor(None, "not-an-email")("not-an-email wrote") == "not-an-email wrote"


def test_the_requester_email_is_not_a_prefix_match() -> None:
    redactor = Redactor(None, "jo@acme.example")
    assert redactor("mail jo@acme.example.org and jo@acme.example.") == (
        f"mail {EMAIL} and {REQUESTER_EMAIL}."
    )


def test_counts_every_kind_across_calls_never_the_values() -> None:
    redactor = Redactor("Priya Raman", None)
    first = redactor("password=hunter2x and card 4111 1111 1111 1111, ring +44 20 7946 0958")
    second = redactor("Priya wrote from priya@globex.example; token ghp_" + "a" * 36)
    assert first == f"password={SECRET} and card {CARD}, ring {PHONE}"
    assert second == f"{REQUESTER} wrote from {EMAIL}; token {SECRET}"
    assert dict(redactor.counts) == {
        "secret": 2,
        "card": 1,
        "phone": 1,
        "requester_name": 1,
        "email": 1,
    }
    assert set(redactor.counts) <= set(KINDS)
    assert "hunter2x" not in repr(redactor.counts)


@pytest.mark.parametrize(
    "text",
    [
        "VPN to 10.20.30.40 drops since 2026-11-03, ticket 4411112222",
        "Outlook asks for the password again and again",
    ],
)
def test_without_a_requester_it_is_redact_pii(text: str) -> None:
    assert Redactor()(text) == redact_pii(text)

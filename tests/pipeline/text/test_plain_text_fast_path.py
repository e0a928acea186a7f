"""``plain_text`` and ``html_to_text`` skip the HTML parser for text with no ``<`` and no ``&``
(most of what a note is built from, every second pass, a webhook's empty resolution): the
answer must be the parser's, character for character, whatever the whitespace and however the
private inline marker sneaks in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.text.ticket_text import _DANGLING_TAG, html_to_text, parse_html, plain_text


def parsed(value: str | None) -> str:
    """``plain_text`` as it reads every pass through the parser."""
    text = value or ""
    for _ in range(3):
        visible = " ".join(parse_html(text, bullets=False).text.split())
        visible = _DANGLING_TAG.sub("", visible).rstrip()
        if visible == text:
            break
        text = visible
    return text


ALPHABET = st.sampled_from(
    list("ab.,;!?()[]{}-/:'\"0") + [" ", "\t", "\n", "\r", "\f", "\v", "\u00a0", "\ue000", "é"]
)


@settings(max_examples=400, deadline=None)
@given(st.text(ALPHABET, max_size=60))
def test_text_without_markup_reads_as_the_parser_reads_it(value: str) -> None:
    assert plain_text(value) == parsed(value)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(list("ab <>&;/#x1") + ["lt", "gt", "amp", "\ue000", "script"]), max_size=30
    ).map("".join)
)
def test_markup_and_entities_still_go_through_the_parser(value: str) -> None:
    assert plain_text(value) == parsed(value)


def test_examples() -> None:
    assert plain_text("  VPN\u00a0drops \n\n hourly ") == "VPN drops hourly"
    assert plain_text("&lt;script&gt;alert(1)&lt;/script&gt; ok") == "ok"  # decoded, dropped
    assert plain_text(None) == ""


@settings(max_examples=400, deadline=None)
@given(st.text(ALPHABET, max_size=60))
def test_html_to_text_reads_text_without_markup_as_the_parser_does(value: str) -> None:
    assert html_to_text(value) == parse_html(value).text
    assert html_to_text(None) == html_to_text("") == parse_html("").text == ""

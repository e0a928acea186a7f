"""The technician-facing note: sanitised, cited, capped, and findable again by its marker."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.models import (
    AssetMatch,
    CitedStatement,
    KBArticle,
    LLMEnhancement,
    RankedCandidate,
    RankingRecord,
    SimilarTicket,
    SourceOutcome,
    SynthesisResult,
    Ticket,
    TicketContext,
)
from pipeline.note.layout import ALLOWED_TAGS
from pipeline.note.renderer import note_has_marker, note_marker, render_note, render_note_text

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<svg onload=alert(1)>",
    "<iframe src=//evil.example></iframe>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<b onmouseover=alert(1)>hover</b>",
    "<style>body{display:none}</style>",
    "<img src=x onerror=alert(1)",
]


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_safe(note_html: str) -> None:
    collector = TagCollector()
    collector.feed(note_html)
    for tag, attrs in collector.tags:
        assert tag in ALLOWED_TAGS, tag
        for name, value in attrs:
            if tag == "a" and name == "href":
                assert value is not None and value.startswith(("http://", "https://")), value
            else:
                assert (tag, name) == ("a", "rel"), (tag, name)
    lowered = note_html.lower()
    for needle in (
        "<script",
        "<img",
        "<svg",
        "<iframe",
        "<style",
        "javascript:",
        "onerror",
        "onload",
        "onmouseover",
    ):
        assert needle not in lowered, needle


def visible_words(note_html: str) -> int:
    return len(html.unescape(re.sub(r"<[^>]+>", " ", note_html)).split())


def make_ranking(first: float = 0.9, *, shown: bool = True) -> RankingRecord:
    return RankingRecord(
        model="default",
        feature_names=["fused"],
        weights=[1.0],
        intercept=0.0,
        bar_absolute=0.1,
        bar_relative=0.3,
        calibration=(1.0, 0.0, 0.0),  # the identity: the first probability as it is
        candidates=[
            RankedCandidate(
                ticket_id="4711", rank=1, probability=first, shown=shown, features=[0.8]
            ),
            RankedCandidate(ticket_id="4712", rank=2, probability=0.4, shown=shown, features=[0.6]),
        ],
    )


def make_context(*, n_similar: int = 2, n_kb: int = 2, long: bool = False) -> TicketContext:
    sentence = "then restarted the service and verified with the user"
    filler = " ".join([sentence] * (8 if long else 0))
    similar = [
        SimilarTicket(
            ticket_id="4711",
            subject="VPN drops every 10 minutes",
            resolution="<p>Raised DPD interval on <b>vpn-gw-01</b>.</p><p>Stable.</p>",
            score=0.82,
        ),
        SimilarTicket(
            ticket_id="4712",
            subject="FortiClient disconnects",
            resolution="Lowered tunnel MTU to 1380.",
            score=0.61,
        ),
    ] + [
        SimilarTicket(
            ticket_id=str(5000 + i),
            subject=f"Older VPN case {i}",
            # each its own fix (precedents sharing a fix are listed once)
            resolution=f"Resolution step {i} "
            + " ".join(f"action{i}x{k}" for k in range(60 if long else 3)),
            score=0.3,
        )
        for i in range(max(0, n_similar - 2))
    ]
    kb = [
        KBArticle(
            article_id="vpn-split-tunnel",
            title="VPN split tunnel guide",
            excerpt="Check DPD and MTU settings first. " + filler,
            score=0.7,
            url="https://kb.example/vpn",
        ),
        KBArticle(
            article_id="mtu", title="MTU troubleshooting", excerpt="Use ping -f -l.", score=0.4
        ),
    ] + [
        KBArticle(
            article_id=f"kb{i}",
            title=f"Extra article {i}",
            excerpt=f"Excerpt {i} {filler}",
            score=0.2,
        )
        for i in range(max(0, n_kb - 2))
    ]
    return TicketContext(
        ticket=Ticket(ticket_id="9001", subject="VPN keeps dropping at home"),
        similar_tickets=similar[:n_similar],
        kb_articles=kb[:n_kb],
        assets=[
            AssetMatch(
                ip="10.20.0.15",
                match="host",
                network="10.20.0.15/32",
                hostname="vpn-gw-01",
                role="VPN gateway",
                owner="Network team",
                location="DC1 rack 4",
            ),
            AssetMatch(
                ip="10.30.1.7",
                match="subnet",
                network="10.30.0.0/22",
                hostname="PLANT-CLIENTS",
                role="Wired client VLAN",
                owner="Plant IT",
                location="Shelbyville",
            ),
        ],
        unmatched_ips=["203.0.113.9"],
        ranking=make_ranking(),
    )


def make_llm(summary: str = "VPN drops match two earlier tickets.") -> SynthesisResult:
    enhancement = LLMEnhancement(
        summary=summary,
        likely_causes=[
            CitedStatement(
                text="Dead peer detection interval too short",
                sources=["ticket:4711", "asset:10.20.0.15"],
            )
        ],
        next_steps=[
            CitedStatement(
                text="Raise the DPD interval to 60 s",
                sources=["ticket:4711", "kb:vpn-split-tunnel"],
            ),
            CitedStatement(text="Check the tunnel MTU", sources=["kb:mtu", "ticket:404"]),
        ],
        confidence=0.78,
        confidence_reason="two closely matching resolved tickets",
    )
    return SynthesisResult(mode="llm", enhancement=enhancement, model="openai/gpt-4o-mini")


def test_llm_note_has_every_section_with_readable_citations() -> None:
    note = render_note(enhancement_id="enh-1", context=make_context(), synthesis=make_llm())
    text = note.text
    for expected in (
        "VPN drops match two earlier tickets.",
        "Dead peer detection interval too short",
        "(sources: ticket #4711; asset 10.20.0.15 (vpn-gw-01))",
        "ticket #4711; KB: VPN split tunnel guide",
        "#4711 VPN drops every 10 minutes (82% match)",
        "Resolution: Raised DPD interval on vpn-gw-01. Stable.",
        "VPN split tunnel guide",
        "10.20.0.15 → vpn-gw-01 — role VPN gateway; owner Network team; location DC1 rack 4; "
        "host match",
        "10.30.1.7 → PLANT-CLIENTS — role Wired client VLAN; owner Plant IT; location "
        "Shelbyville; in subnet 10.30.0.0/22",
        "Not in the asset inventory: 203.0.113.9",
        "High (90%) that the first precedent, ticket #4711, points to the fix",
        "AI-Agents enhancement enh-1 · model openai/gpt-4o-mini",
    ):
        assert expected in text, expected
    assert "404" not in text  # a citation the context cannot back is dropped
    assert "78%" not in text  # the model's own number is an input, not what the note states
    assert (
        '<a href="https://kb.example/vpn" rel="noopener noreferrer">VPN split tunnel guide</a>'
        in note.html
    )
    assert "<code>10.20.0.15</code>" in note.html
    assert note.word_count == visible_words(note.html)
    assert (
        render_note_text(enhancement_id="enh-1", context=make_context(), synthesis=make_llm())
        == text
    )
    assert "<" not in text.replace("<br>", "")
    assert_safe(note.html)


@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_are_stripped_everywhere(payload: str) -> None:
    context = make_context()
    context.ticket.subject = payload
    context.similar_tickets[0].subject = f"VPN {payload}"
    context.similar_tickets[0].resolution = f"Fixed {payload} it"
    context.kb_articles[0].title = f"VPN guide {payload}"
    context.kb_articles[0].excerpt = payload
    context.kb_articles[1].url = "javascript:alert(1)"
    context.assets[0].hostname = f"gw{payload}"
    context.assets[0].role = payload
    synthesis = make_llm(summary=f"Summary {payload}")
    synthesis.enhancement.likely_causes[0].text = f"cause {payload}"  # type: ignore[union-attr]
    synthesis.enhancement.confidence_reason = payload  # type: ignore[union-attr]
    synthesis.model = f"model{payload}"
    note = render_note(
        enhancement_id="enh-x", context=context, synthesis=synthesis, supersedes=f"old{payload}"
    )
    assert_safe(note.html)
    assert note_has_marker(note.html, "enh-x")
    reason = SynthesisResult(mode="context_only", reason=f"LLM down {payload}")
    assert_safe(render_note(enhancement_id="e", context=context, synthesis=reason).html)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200), st.text(max_size=80))
def test_arbitrary_llm_and_ticket_text_cannot_inject_markup(summary: str, title: str) -> None:
    context = make_context()
    context.kb_articles[0].title = title
    note = render_note(enhancement_id="enh-h", context=context, synthesis=make_llm(summary=summary))
    assert_safe(note.html)
    assert note_has_marker(note.html, "enh-h")


@pytest.mark.parametrize("max_words", [500, 250, 150, 100, 60, 40])
def test_word_cap_respected_with_footer_intact(max_words: int) -> None:
    context = make_context(n_similar=12, n_kb=8, long=True)
    long_summary = " ".join(["The VPN gateway drops idle tunnels after ten seconds."] * 25)
    note = render_note(
        enhancement_id="enh-cap",
        context=context,
        synthesis=make_llm(summary=long_summary),
        max_words=max_words,
    )
    assert note.word_count <= max_words
    assert note.word_count == visible_words(note.html)
    assert "AI-Agents enhancement enh-cap · model openai/gpt-4o-mini" in note.text
    assert note.html.endswith(
        "<p><i>AI-Agents enhancement enh-cap · model openai/gpt-4o-mini</i></p>"
    )
    assert_safe(note.html)


def test_trimming_drops_similar_ticket_details_before_next_steps() -> None:
    context = make_context(n_similar=12, n_kb=8, long=True)
    full = render_note(enhancement_id="e", context=context, synthesis=make_llm(), max_words=5000)
    assert full.word_count > 500
    capped = render_note(
        enhancement_id="e", context=context, synthesis=make_llm(), max_words=full.word_count - 40
    )
    assert "Raise the DPD interval to 60 s" in capped.text
    assert "Older VPN case 9" in capped.text  # the ticket stays, only its details went
    assert capped.text.count("Resolution:") < full.text.count("Resolution:")


def test_tiny_cap_keeps_footer_and_context_only_reason() -> None:
    synthesis = SynthesisResult(mode="context_only", reason="LLM circuit open")
    note = render_note(
        enhancement_id="enh-t", context=make_context(), synthesis=synthesis, max_words=5
    )
    assert note.text.endswith("AI-Agents enhancement enh-t · context only")
    assert "AI summary unavailable" in note.text and "LLM circuit open" in note.text
    assert note_has_marker(note.html, "enh-t")


def test_context_only_note_says_so_and_is_still_useful() -> None:
    synthesis = SynthesisResult(mode="context_only", reason="no LLM API key configured")
    note = render_note(enhancement_id="enh-c", context=make_context(), synthesis=synthesis)
    text = note.text
    assert "AI summary unavailable (no LLM API key configured)" in text
    assert "built from the gathered context only" in text
    assert "Candidate next steps (how similar tickets were resolved)" in text
    assert "1. Raised DPD interval on vpn-gw-01. Stable. (sources: ticket #4711)" in text
    assert "2. Lowered tunnel MTU to 1380. (sources: ticket #4712)" in text
    assert "Found 2 similar resolved tickets, 2 knowledge-base articles and 2 known systems" in text
    assert "10.20.0.15 → vpn-gw-01" in text
    # a context-only note is calibrated too: on the ranking alone, without a model's number
    assert "High (90%) that the first precedent, ticket #4711, points to the fix" in text
    assert text.endswith("AI-Agents enhancement enh-c · context only")
    assert_safe(note.html)


def test_context_only_without_similar_tickets_points_to_kb() -> None:
    context = make_context(n_similar=0)
    synthesis = SynthesisResult(mode="context_only", reason=None)
    text = render_note(enhancement_id="e", context=context, synthesis=synthesis).text
    assert "no reason recorded" in text
    assert "Follow the knowledge-base article (KB: VPN split tunnel guide)" in text


def test_llm_mode_without_enhancement_falls_back_to_context_only() -> None:
    synthesis = SynthesisResult(mode="llm", enhancement=None, model="m", reason="invalid JSON")
    text = render_note(enhancement_id="e", context=make_context(), synthesis=synthesis).text
    assert "AI summary unavailable (invalid JSON)" in text
    assert text.endswith("· context only")


def test_supersedes_line_does_not_carry_the_old_marker() -> None:
    note = render_note(
        enhancement_id="enh-new", context=make_context(), synthesis=make_llm(), supersedes="enh-old"
    )
    assert "supersedes the earlier note from enhancement enh-old" in note.text
    assert note_has_marker(note.html, "enh-new")
    assert not note_has_marker(note.html, "enh-old")


def test_context_gaps_are_visible() -> None:
    context = make_context()
    context.sources = [
        SourceOutcome(name="kb_articles", status="timeout"),
        SourceOutcome(name="ip_assets", status="error", error="db down"),
        SourceOutcome(name="similar_tickets", status="ok"),
    ]
    text = render_note(enhancement_id="e", context=context, synthesis=make_llm()).text
    gaps = "knowledge base (timeout), asset inventory (error)."
    assert f"Some context could not be gathered: {gaps}" in text


def test_marker_round_trip_survives_what_sdp_does_to_notes() -> None:
    ident = "3f2b8c1e-7d4a-4f7e-9a51-0c2d9e6b7a10"
    note = render_note(enhancement_id=ident, context=make_context(), synthesis=make_llm())
    assert note_marker(ident) == f"AI-Agents enhancement {ident}"
    assert note_marker(ident) in note.text
    variants = [
        note.html,
        note.text,
        html.escape(note.html),
        html.escape(html.escape(note.html)),
        re.sub(r"<[^>]+>", "", note.html),
        re.sub(r"<[^>]+>", " ", note.html),
        note.html.replace(" ", "&nbsp;").replace("·", "&middot;"),
        note.html.replace("<p>", '<div class="sdp-note">').replace("</p>", "</div>\n"),
        note.html.replace(" ", "\n"),
    ]
    for variant in variants:
        assert note_has_marker(variant, ident), variant[:80]
        assert not note_has_marker(variant, ident[:-1])
        assert not note_has_marker(variant, "3f2b8c1e")
    assert not note_has_marker(note.html.replace(ident, "x"), ident)


def test_marker_does_not_match_a_longer_id() -> None:
    assert note_has_marker("AI-Agents enhancement enh-12 · context only", "enh-12")
    assert not note_has_marker("AI-Agents enhancement enh-123 · context only", "enh-12")
    assert not note_has_marker("AI-Agents enhancement enh-12-b", "enh-12")
    with pytest.raises(ValueError):
        note_marker(" ")


def test_confidence_is_calibrated_levelled_and_says_what_it_is_about() -> None:
    """The note states the calibrated probability with its level; with the model's weight the
    LLM's own number moves it; no precedent shown, or no ranking at all, is said plainly."""
    context = make_context()
    for first, level in ((0.95, "High"), (0.6, "Medium"), (0.2, "Low")):
        context.ranking = make_ranking(first)
        text = render_note_text(enhancement_id="e", context=context, synthesis=make_llm())
        assert f"{level} ({round(first * 100)}%) that the first precedent" in text, text
    context.ranking = make_ranking(0.6).model_copy(update={"calibration": (1.0, 4.0, 0.0)})
    text = render_note_text(enhancement_id="e", context=context, synthesis=make_llm())
    assert "High (82%)" in text  # σ(logit 0.6 + 4·(0.78 − 0.5)) = 0.82
    context.ranking = make_ranking(0.3, shown=False)
    text = render_note_text(enhancement_id="e", context=context, synthesis=make_llm())
    assert "Low (30%): no past ticket is close enough to show" in text
    context.ranking = None
    text = render_note_text(enhancement_id="e", context=context, synthesis=make_llm())
    assert "Not assessed: this note's precedents were not ranked." in text


def test_shown_precedents_state_their_learned_probability() -> None:
    context = make_context()
    context.similar_tickets[0].relevance = 0.87
    text = render_note_text(enhancement_id="e", context=context, synthesis=make_llm())
    assert "#4711 VPN drops every 10 minutes (87% likely match)" in text
    assert "#4712 FortiClient disconnects (61% match)" in text  # unranked: the fused score


def test_a_statement_citing_only_what_the_note_does_not_show_is_dropped() -> None:
    """The relevance bar may leave a precedent out of the context that a stale or steered model
    still cites; its claim must not appear uncited."""
    synthesis = make_llm()
    assert synthesis.enhancement is not None
    synthesis.enhancement.next_steps.append(
        CitedStatement(text="Reinstall the client from ticket 777", sources=["ticket:777"])
    )
    synthesis.enhancement.next_steps.append(CitedStatement(text="Call the user back"))
    text = render_note_text(enhancement_id="e", context=make_context(), synthesis=synthesis)
    assert "Reinstall the client" not in text
    assert "Call the user back" in text  # cited nothing: general advice, shown as such


def test_precedents_with_the_same_fix_are_listed_once() -> None:
    context = make_context()
    context.similar_tickets.append(
        SimilarTicket(
            ticket_id="4799",
            subject="VPN drops again",
            resolution="Raised DPD interval on vpn-gw-01. Stable.",
            score=0.5,
        )
    )
    text = render_note_text(enhancement_id="e", context=context, synthesis=make_llm())
    assert "#4711 VPN drops every 10 minutes (82% match; same fix in #4799)" in text
    assert "VPN drops again" not in text and text.count("Raised DPD interval") == 1
    context_only = SynthesisResult(mode="context_only", reason="no key")
    text = render_note_text(enhancement_id="e", context=context, synthesis=context_only)
    assert (
        "1. Raised DPD interval on vpn-gw-01. Stable. (sources: ticket #4711; ticket #4799)" in text
    )
    assert "2. Lowered tunnel MTU to 1380. (sources: ticket #4712)" in text


def test_a_step_repeating_an_earlier_one_is_listed_once_citing_both() -> None:
    context = make_context()
    synthesis = make_llm()
    assert synthesis.enhancement is not None
    synthesis.enhancement.next_steps = [
        CitedStatement(
            text="Apply the fix from ticket 4711: raised the DPD interval on vpn-gw-01 to 60 s",
            sources=["ticket:4711"],
        ),
        CitedStatement(text="Check the tunnel MTU", sources=["ticket:4712"]),
        CitedStatement(
            text="Apply the fix from ticket 4712: raised the DPD interval on vpn-gw-01 to 60 s",
            sources=["ticket:4712", "kb:vpn-split-tunnel"],
        ),
    ]
    text = render_note_text(enhancement_id="e", context=context, synthesis=synthesis)
    assert text.count("raised the DPD interval on vpn-gw-01") == 1
    assert (
        "Apply the fix from ticket 4711: raised the DPD interval on vpn-gw-01 to 60 s "
        "(sources: ticket #4711; ticket #4712; KB: VPN split tunnel guide)" in text
    )
    assert "Check the tunnel MTU (sources: ticket #4712)" in text

"""One SDP request → ticket mapping and one HTML → text function for every way a ticket
arrives: webhook (both shapes), SDP fetch, history import. The same request must produce the
same words whichever way it came, and no path may keep `<script>`/`<style>` text."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from pipeline.retrieval.history import ResolvedTicket
from pipeline.sdp.fetcher import ticket_from_sdp
from pipeline.sdp.wire import SdpFieldError, map_sdp_request, parse_ticket_webhook
from pipeline.text.ticket_text import html_to_text, salient_terms

HOSTILE = (
    "<p>VPN <b>drops</b><i>hourly</i></p><script>var leaked='scriptword'</script>"
    "<style>.x{color:secretstyle}</style><div>Gateway&nbsp;10.10.0.2</div>"
)
REQUEST = {
    "id": "4711",
    "subject": " VPN drops ",
    "description": HOSTILE,
    "resolution": {"content": "<p>Raised <b>MTU</b></p><script>x='nope'</script>"},
    "priority": {"name": "High"},
    "status": {"name": "Resolved"},
    "requester": {"name": "Ann", "email_id": "ann@example.com"},
    "category": {"name": "Network"},
    "tags": [{"name": "vpn"}, "network"],
    "resolved_time": {"value": "1700000000000"},
    "last_updated_time": {"value": "1700000000000"},
}


def test_html_to_text_drops_script_and_style_and_separates_inline_tags() -> None:
    assert html_to_text(HOSTILE) == "VPN drops hourly\n\nGateway 10.10.0.2"
    assert html_to_text("x<y then z and a < b") == "x<y then z and a < b"  # plain text kept
    assert html_to_text("line one\nline two") == "line one\nline two"
    assert html_to_text(None) == ""


def test_every_path_maps_the_same_request_to_the_same_text() -> None:
    body = json.dumps({"request": REQUEST}).encode()
    hooked = parse_ticket_webhook(json.loads(body), body)
    fetched = ticket_from_sdp(REQUEST)
    imported = ResolvedTicket.from_sdp(REQUEST)
    flat_body = json.dumps(
        {"ticket_id": "4711", "subject": "VPN drops", "description": HOSTILE}
    ).encode()
    flat = parse_ticket_webhook(json.loads(flat_body), flat_body)

    expected = "VPN drops hourly\n\nGateway 10.10.0.2"
    assert hooked.ticket.description == fetched.description == imported.description == expected
    assert flat.ticket.description == expected
    assert hooked.ticket.subject == fetched.subject == imported.subject == "VPN drops"
    assert hooked.resolution == imported.resolution == "Raised MTU"
    assert hooked.tags == imported.tags == ["Network", "vpn"]  # case-insensitive dedupe
    assert hooked.resolved_at == imported.resolved_at == datetime.fromtimestamp(1.7e9, UTC)
    assert fetched.priority == hooked.ticket.priority == "High"
    assert fetched.requester_email == hooked.ticket.requester_email == "ann@example.com"
    for words in (salient_terms(fetched.subject, fetched.description), salient_terms("", HOSTILE)):
        assert "scriptword" not in words and "secretstyle" not in words and "leaked" not in words


def test_strict_mapping_names_the_bad_field_and_lenient_mapping_drops_it() -> None:
    bad = {**REQUEST, "subject": ["not", "text"], "resolved_time": {"value": "soon"}}
    with pytest.raises(SdpFieldError) as caught:
        map_sdp_request(bad, strict=True)
    assert caught.value.field == "request.subject"
    body = json.dumps({"request": bad}).encode()
    with pytest.raises(SdpFieldError) as hooked:
        parse_ticket_webhook(json.loads(body), body)
    assert hooked.value.field == "request.subject"
    lenient = map_sdp_request(bad)
    assert lenient.subject == "" and lenient.resolved_at is None
    assert lenient.description == "VPN drops hourly\n\nGateway 10.10.0.2"


@pytest.mark.parametrize("unit", ["<b", "<a ", "<!--", "</", '<a x="', "<script>x<"])
def test_html_to_text_stays_linear_on_unclosed_markup(unit: str) -> None:
    """Ticket text comes from anyone; HTMLParser alone is quadratic on unclosed `<`."""
    text = unit * (100_000 // len(unit))
    started = time.perf_counter()
    html_to_text(text)
    assert time.perf_counter() - started < 2.0

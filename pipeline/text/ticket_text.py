"""What a ticket's text says: the words a reader sees, its salient terms, the IP addresses it
names.

**HTML → text, once.** Live tickets (webhooks, SDP fetches), imported history and KB pages go
through ``html_to_text``, so the words a new ticket is matched on and the words of the tickets
it is matched against are produced the same way; the note reduces every untrusted piece it shows
to one line with ``plain_text`` (the same parser) and counts its words on it. A regex that
deletes ``<...>`` keeps what must not be indexed — the source of ``<script>`` and ``<style>``
blocks, hidden templates — and glues words from adjacent blocks together. A real (forgiving)
parser drops those elements whole, turns block boundaries into line breaks and decodes entities
once. Inline tags separate words too (``<b>10.0.0.1</b><i>10.0.0.2</i>`` stays two addresses): a
word split by a tag is far rarer in tickets than two values glued by one. Plain text (most
tickets) passes through with its line breaks intact.

**Salient terms.** Tickets are chatty ("Hi team, please help, since this morning...") and a
plain AND of every word matches nothing, so ``salient_terms`` keeps the distinctive words (no
stop words, no greeting filler, no numbers-only tokens), subject first, and ``tsquery_for`` ORs
them: ``ts_rank_cd`` then rewards the documents that share the most, and the closest, terms.

**IP addresses** (for the asset cross-reference). Candidates are found with loose patterns and
then validated by :mod:`ipaddress`, so anything returned is an address PostgreSQL's
``inet``/``cidr`` accept. ``extract_ips`` returns hosts (``10.0.0.5/24`` yields ``10.0.0.5``);
``10.0.0.0/24`` names a network and is only reported by ``extract_networks``. IPv4-mapped IPv6
is returned as the IPv4 address it maps (the endpoint the inventory knows); other IPv6 in
compressed form. Zone ids (``fe80::1%eth0``) are dropped: they name an interface on the reporting
machine and ``inet`` rejects them. The bare ``::`` is ignored (punctuation far more often than
an address), and an eight-group IPv6 whose groups are all two hex digits is an EUI-64 hardware
address, not an IP.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

# Elements whose content is never reader-visible text.
_INVISIBLE = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "head", "object", "iframe", "select"}
)
_BLOCK = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
# A "<" that no ">" closes before the next "<" cannot start a tag. Escaping it first keeps
# parsing linear: HTMLParser rescans the rest of the input for every such "<" (quadratic:
# 100 kB of "<a " would take half a minute), and ticket text comes from anyone.
_UNCLOSED_LT = re.compile(r"<(?![^<>]*>)")
_BLANK_LINES = re.compile(r"\n{3,}")
# An inline tag separates words, but not a word from the punctuation after it or the bracket
# before it: "on <b>gw-01</b>." reads "on gw-01.", and two addresses in <b> and <i> stay apart.
_INLINE = "\ue000"
_INLINE_GAPS = re.compile(r"\ue000+(?=[\s.,;!?)\]}]|$)|(?<=[\s(\[{])\ue000+|^\ue000+")
# A tag the input never closes: the HTML parsing rules drop it, and so does ``plain_text``.
_DANGLING_TAG = re.compile(r"<[A-Za-z/!?][^<>]*$")


@dataclass(frozen=True)
class HtmlDocument:
    text: str
    title: str | None
    heading: str | None


class _Extractor(HTMLParser):
    def __init__(self, *, bullets: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.bullets = bullets
        self.parts: list[str] = []
        self.hidden: list[str] = []  # open invisible elements (a stack: they can nest)
        self.title: list[str] | None = None
        self.heading: list[str] | None = None
        self.title_text: str | None = None
        self.heading_text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body" and "head" in self.hidden:
            self.hidden.clear()  # an unclosed <head> must not hide the whole page
        if tag == "title" and self.title_text is None:
            self.title = []
        elif tag in _INVISIBLE and tag not in _VOID:
            self.hidden.append(tag)
        elif tag == "h1" and self.heading_text is None and not self.hidden:
            self.heading = []
        self.parts.append("\n" if tag in _BLOCK else _INLINE)
        if tag == "li" and self.bullets:
            self.parts.append("- ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append("\n" if tag in _BLOCK else _INLINE)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.title is not None:
            self.title_text = _one_line("".join(self.title)) or None
            self.title = None
        elif tag in self.hidden:
            # Close through the matching open element, tolerating unclosed children.
            while self.hidden and self.hidden.pop() != tag:
                pass
        elif tag == "h1" and self.heading is not None:
            self.heading_text = _one_line("".join(self.heading)) or None
            self.heading = None
        if tag in _BLOCK and tag != "li":  # the next item's own break separates list items
            self.parts.append("\n")
        elif tag not in _BLOCK:
            self.parts.append(_INLINE)

    def handle_data(self, data: str) -> None:
        if self.title is not None:
            self.title.append(data)
            return
        if self.hidden:
            return
        data = data.replace(_INLINE, "")
        if self.heading is not None:
            self.heading.append(data)
        self.parts.append(data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _tidy(text: str) -> str:
    text = _INLINE_GAPS.sub("", text).replace(_INLINE, " ")
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def parse_html(markup: str, *, bullets: bool = True) -> HtmlDocument:
    """Visible text plus the `<title>` and first `<h1>`, for titling imported pages; list items
    start with "- " unless ``bullets`` is false."""
    parser = _Extractor(bullets=bullets)
    parser.feed(_UNCLOSED_LT.sub("&lt;", markup or ""))
    parser.close()
    if parser.heading is not None:  # an unclosed <h1> still names the page
        parser.heading_text = _one_line("".join(parser.heading)) or None
    return HtmlDocument(
        text=_tidy("".join(parser.parts)), title=parser.title_text, heading=parser.heading_text
    )


def html_to_text(markup: str | None) -> str:
    """Reader-visible text of ``markup`` (HTML or plain text); ``<script>``/``<style>`` dropped.

    Text without a ``<`` or an ``&`` (an empty field, a plain-text template's) skips the
    parser, which would only drop the inline marker before the same tidying."""
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return _tidy(markup.replace(_INLINE, ""))
    return parse_html(markup).text


def plain_text(value: str | None) -> str:
    """One line of the reader-visible words of untrusted HTML or text, nothing else.

    Read again while it changes: ``&lt;script&gt;`` decodes to markup that must be dropped in
    turn, so no markup survives in any encoding.
    """
    text = value or ""
    for _ in range(3):
        if "<" in text or "&" in text:
            visible = " ".join(parse_html(text, bullets=False).text.split())
        else:  # no markup and no entity: the parser would only drop the inline marker
            visible = " ".join(text.replace(_INLINE, "").split())
        visible = _DANGLING_TAG.sub("", visible).rstrip()
        if visible == text:
            break
        text = visible
    return text


_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
_STOP = frozenset(
    """
a about above after again against all also am an and any are as at be because been before
being below between both but by can cannot could did do does doing down during each few
for from further had has have having he her here hers him his how i if in into is it its
itself just me more most my no nor not now of off on once only or other our out over own
same she should so some such than that the their them then there these they this those
through to too under until up very was we were what when where which while who whom why
will with would you your yours hi hello hey team thanks thank please pls help urgent asap
issue issues problem problems ticket user users since today yesterday morning afternoon
evening still again get got getting anyone someone working work works seems seem able
unable cant can't won't dont regards best kind dear sir madam know let need needs want
trying tried see seeing also via
""".split()  # noqa: SIM905 - a word list reads better as text
)


def salient_terms(subject: str, description: str, *, max_terms: int = 12) -> list[str]:
    terms: list[str] = []
    for source in (subject, description):
        for word in _WORD.findall(html_to_text(source).lower()):
            if word not in _STOP and word not in terms:
                terms.append(word)
                if len(terms) >= max_terms:
                    return terms
    return terms


_NOT_A_LETTER = re.compile(r"[\W_]+")


def letter_trigrams(text: str) -> frozenset[str]:
    """The text's letter triples, lower-cased, each word padded with one space: what the
    ranking's ``spelling`` feature compares (a typo or a loan word keeps most of them)."""
    padded = f" {_NOT_A_LETTER.sub(' ', text.lower()).strip()} "
    if not padded.strip():
        return frozenset()
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def tsquery_for(terms: list[str]) -> str | None:
    """An OR query for ``to_tsquery``; terms are already [a-z0-9] only, so nothing to escape."""
    return " | ".join(terms) if terms else None


DEFAULT_LIMIT = 20

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_OCTET = r"\d{1,3}"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
# A prefix is a length or, for IPv4, a dotted netmask ("10.0.0.0/255.255.255.0").
_PREFIX = rf"/(?:{_IPV4}|\d{{1,3}})(?!\d)"

# IPv4: not glued to a word or to another dotted number (rejects "1.2.3.4.5" and "v1.2.3.4"),
# but a ":" before it is fine ("IP:10.0.0.1") and a ":port" after it is fine.
_IPV4_RE = re.compile(
    rf"(?<![\w.])(?P<addr>{_IPV4})(?P<prefix>{_PREFIX})?(?!\w|\.\d)",
)

# IPv6: two or more colon-terminated hex groups, optionally ending in a hex group or an
# embedded dotted IPv4 (tried first so "::ffff:10.0.0.1" is not cut at "10").
_IPV6_RE = re.compile(
    rf"(?<![\w:.])(?P<addr>(?:[0-9A-Fa-f]{{0,4}}:){{2,8}}(?:{_IPV4}|[0-9A-Fa-f]{{1,4}})?)"
    rf"(?P<zone>%[0-9A-Za-z_.\-]+)?(?P<prefix>/\d{{1,3}}(?!\d))?(?![\w:]|\.\d)",
)

_EUI64_RE = re.compile(r"^(?:[0-9A-Fa-f]{2}:){7}[0-9A-Fa-f]{2}$")


@dataclass(frozen=True)
class IPMention:
    """One validated mention: where it starts, the host address (if any) and the network."""

    start: int
    end: int
    address: IPAddress | None
    network: IPNetwork | None


def extract_ips(text: str, *, limit: int = DEFAULT_LIMIT) -> list[str]:
    """Host addresses by first appearance, deduplicated and normalised, at most ``limit``."""
    found: list[str] = []
    seen: set[str] = set()
    for mention in iter_ip_mentions(html_to_text(text)):
        if mention.address is None:
            continue
        value = normalise_address(mention.address)
        if value not in seen:
            seen.add(value)
            found.append(value)
            if len(found) >= limit:
                break
    return found


def extract_networks(text: str, *, limit: int = DEFAULT_LIMIT) -> list[str]:
    """CIDR networks by first appearance; ``10.0.0.5/24`` counts as ``10.0.0.0/24``."""
    found: list[str] = []
    seen: set[str] = set()
    for mention in iter_ip_mentions(html_to_text(text)):
        if mention.network is None:
            continue
        value = str(mention.network)
        if value not in seen:
            seen.add(value)
            found.append(value)
            if len(found) >= limit:
                break
    return found


def normalise_address(address: IPAddress) -> str:
    """Canonical text of an address; IPv4-mapped IPv6 collapses to the IPv4 it stands for."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return address.compressed


def iter_ip_mentions(text: str) -> Iterator[IPMention]:
    """Every valid address/network mention in plain text, ordered by position, without overlaps.

    Shared with redaction, which must know where addresses are so it never rewrites them.
    """
    mentions: list[IPMention] = []
    taken: list[tuple[int, int]] = []
    for match in _IPV6_RE.finditer(text):
        mention = _ipv6_mention(match)
        if mention is not None:
            mentions.append(mention)
            taken.append((mention.start, mention.end))
    for match in _IPV4_RE.finditer(text):
        if any(start <= match.start() < end for start, end in taken):
            continue  # the dotted tail of an IPv6 address already reported
        mention = _mention(match.start(), match.end(), match["addr"], match["prefix"])
        if mention is not None:
            mentions.append(mention)
    mentions.sort(key=lambda m: m.start)
    yield from mentions


def _ipv6_mention(match: re.Match[str]) -> IPMention | None:
    addr = match["addr"]
    end = match.end()
    if addr.endswith(":") and not addr.endswith("::"):
        # Sentence punctuation ("reach fe80::1: timeout") rather than part of the address.
        if match["zone"] or match["prefix"]:
            return None
        addr = addr[:-1]
        end -= 1
    if addr == "::" or _EUI64_RE.match(addr):
        return None
    return _mention(match.start(), end, addr, match["prefix"])


def _mention(start: int, end: int, addr: str, prefix: str | None) -> IPMention | None:
    try:
        address = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if prefix is None:
        return IPMention(start, end, address, None)
    try:
        network = ipaddress.ip_network(f"{addr}{prefix}", strict=False)
    except ValueError:
        # "10.0.0.1/33" or a path-like suffix: keep the address, ignore the bogus prefix.
        return IPMention(start, end - len(prefix), address, None)
    is_network_spec = (
        address == network.network_address and network.prefixlen < network.max_prefixlen
    )
    return IPMention(start, end, None if is_network_spec else address, network)

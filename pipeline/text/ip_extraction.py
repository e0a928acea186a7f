"""Find the IP addresses and networks a ticket mentions, for the asset cross-reference.

Ticket text is messy: HTML descriptions, version numbers, clock times, MAC addresses, ports and
sentence punctuation all sit next to real addresses. Candidates are therefore found with
deliberately loose patterns and then *validated* by :mod:`ipaddress`, so anything returned is an
address Postgres' ``inet``/``cidr`` types will accept.

Decisions that callers rely on:

* ``extract_ips`` returns host addresses. ``10.0.0.5/24`` (interface notation) yields
  ``10.0.0.5``; ``10.0.0.0/24`` names a network, not a host, so it is only reported by
  ``extract_networks`` (as ``10.0.0.0/24``).
* IPv4-mapped IPv6 (``::ffff:10.0.0.1``) is returned as the IPv4 address it maps, because that
  is the endpoint the inventory knows; any other IPv6 address is returned in compressed form.
* IPv6 zone ids (``fe80::1%eth0``) are dropped: they name an interface on the reporting machine,
  not the host, and ``inet`` rejects them.
* The bare ``::`` is ignored: in prose it is punctuation far more often than an address.
* An uncompressed eight-group IPv6 whose groups are all two hex digits is treated as an EUI-64
  hardware address, not an IP.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.text.html_text import html_to_text

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

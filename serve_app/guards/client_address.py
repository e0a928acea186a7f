"""Who a request comes from, for per-client rate limits: the peer's address, or the address a
proxy the deployment trusts says it forwarded for.

``X-Forwarded-For`` is whatever the client wrote, unless a proxy we trust appended to it, so it
is read only when the connection comes from one of ``AI_AGENTS_TRUSTED_PROXIES`` (CIDRs; none by
default), and then from the right: each trusted hop is skipped and the first address that is not
a trusted proxy is the client. Values a client put further left are never reached, so forging
the header buys nothing. Behind HAProxy (which appends the client's address, ``option
forwardfor``) HAProxy's own address must be trusted, else every client shares HAProxy's one
address and one client's burst throttles them all.

The key is one address for IPv4 and the /64 network for IPv6: one IPv6 subscriber usually has a
whole /64 and could otherwise take a fresh limit with every address in it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from core.sdp_url_policy import IPAddress, IPNetwork

MAX_FORWARDED_HOPS = 16  # at most this many, counted from the right, are read
MAX_HEADER_CHARS = 2048


def _parse(text: str) -> IPAddress | None:
    """An address as proxies write it: bare, ``[v6]``, ``v4:port`` or ``[v6]:port``."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def limiter_key(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def forwarded_hops(values: Iterable[str]) -> list[str]:
    """The hops of every ``X-Forwarded-For`` header, in order; bounded in size and count."""
    joined = ",".join(values)[-MAX_HEADER_CHARS:]
    return [hop for hop in joined.split(",") if hop.strip()][-MAX_FORWARDED_HOPS:]


def client_key(peer: str | None, forwarded: Iterable[str], trusted: Sequence[IPNetwork]) -> str:
    """The rate-limit key of a request from ``peer`` carrying ``X-Forwarded-For`` values."""
    peer_address = _parse(peer or "")
    if peer_address is None:
        return "unknown peer"
    if not trusted or not _trusted(peer_address, trusted):
        return limiter_key(peer_address)
    hops = forwarded_hops(forwarded)
    leftmost = peer_address
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:  # a trusted proxy writes addresses: this hop is not its
            break
        if not _trusted(address, trusted):
            return limiter_key(address)
        leftmost = address
    return limiter_key(leftmost)

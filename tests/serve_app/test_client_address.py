"""Who a request comes from (serve_app/guards/client_address.py): the peer, unless the peer is
a proxy the deployment trusts, and then the first address from the right of X-Forwarded-For
that is not a trusted proxy; IPv6 clients by /64. Through HTTP, with the limits, in
tests/api/test_red_team.py."""

from __future__ import annotations

import pytest

from core.sdp_url_policy import parse_networks
from serve_app.guards.client_address import MAX_FORWARDED_HOPS, client_key

PROXIES = parse_networks(["127.0.0.1/32", "10.244.0.0/16"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # no trusted proxy: the header is never read
        ("203.0.113.9", ["198.51.100.1"], (), "203.0.113.9"),
        # an untrusted peer's header is ignored
        ("203.0.113.9", ["198.51.100.1"], PROXIES, "203.0.113.9"),
        # behind HAProxy on loopback: what HAProxy appended counts, not what the client wrote
        ("127.0.0.1", ["6.6.6.6, 198.51.100.7"], PROXIES, "198.51.100.7"),
        # ingress controller (a pod) then HAProxy: both skipped
        ("127.0.0.1", ["198.51.100.7", "10.244.3.4"], PROXIES, "198.51.100.7"),
        ("127.0.0.1", ["198.51.100.7:51234, 10.244.3.4"], PROXIES, "198.51.100.7"),
        ("127.0.0.1", ["[2001:db8:1:2::99]:443"], PROXIES, "2001:db8:1:2::/64"),
        ("127.0.0.1", ["::ffff:198.51.100.7"], PROXIES, "198.51.100.7"),
        # a trusted proxy that appended nothing readable: the proxy itself, never the garbage
        ("127.0.0.1", ["198.51.100.7, not-an-address"], PROXIES, "127.0.0.1"),
        # only trusted hops (a probe from the node): the leftmost of them
        ("127.0.0.1", ["10.244.0.8"], PROXIES, "10.244.0.8"),
        ("127.0.0.1", [], PROXIES, "127.0.0.1"),
        ("2001:db8:5:6::1", [], (), "2001:db8:5:6::/64"),
        (None, [], PROXIES, "unknown peer"),
    ],
)
def test_client_key(peer, forwarded, trusted, expected) -> None:  # type: ignore[no-untyped-def]
    assert client_key(peer, forwarded, trusted) == expected


def test_a_huge_header_is_read_only_from_the_right_and_bounded() -> None:
    chain = ", ".join(f"10.244.0.{i % 250}" for i in range(10_000)) + ", 198.51.100.7"
    assert client_key("127.0.0.1", [chain], PROXIES) == "198.51.100.7"
    padded = "198.51.100.9, " + ", ".join(["10.244.0.1"] * (MAX_FORWARDED_HOPS + 5))
    # the real client sits beyond the hops read: the last trusted hop stands in, not a forgery
    assert client_key("127.0.0.1", [padded], PROXIES) == "10.244.0.1"

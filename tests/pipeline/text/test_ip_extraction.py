"""IP extraction: what counts as an address in messy ticket text, and what must not."""

from __future__ import annotations

import ipaddress
import time

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pipeline.text.ticket_text import (
    extract_ips,
    extract_networks,
    html_to_text,
    iter_ip_mentions,
)

WORD = st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True)
BEFORE = st.sampled_from([" ", "\n", "(", "<b>", "<td>", "IP ", "host=", "[", "\t", "&nbsp;"])
AFTER = st.sampled_from([" ", ".", ",", ")", "</b>", "\n", "; ", "]", "!", "<br>"])


def expected_form(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return address.compressed


def findable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The documented exclusions: bare '::' and EUI-64-looking all-two-digit groups."""
    if address == ipaddress.IPv6Address("::"):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        groups = str(address).split(":")
        return not (len(groups) == 8 and all(len(g) == 2 for g in groups))
    return True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("VPN gateway 10.20.0.15 unreachable", ["10.20.0.15"]),
        ("<p>Server <b>10.0.0.1</b><br>10.0.0.2</p>", ["10.0.0.1", "10.0.0.2"]),
        ("<div>10.0.0.1</div><div>10.0.0.3</div>", ["10.0.0.1", "10.0.0.3"]),
        ("ping 10&#46;0&#46;0&#46;9 fails", ["10.0.0.9"]),
        ("see fe80::1 and 2001:db8::42 today", ["fe80::1", "2001:db8::42"]),
        ("mapped ::ffff:10.0.0.1 here", ["10.0.0.1"]),
        ("link-local fe80::1%eth0 on the switch", ["fe80::1"]),
        ("IPv6 2001:0DB8:0000:0000:0000:0000:0000:0042 full form", ["2001:db8::42"]),
        ("RDP to 10.1.1.1:3389 fails", ["10.1.1.1"]),
        ("https://[2001:db8::1]:443/login", ["2001:db8::1"]),
        ("IP:10.1.1.7 (primary)", ["10.1.1.7"]),
        ("Ends a sentence 192.168.1.10.", ["192.168.1.10"]),
        ("Gateway was fe80::1.Then it dropped", ["fe80::1"]),
        ("reach fe80::1: timeout", ["fe80::1"]),
        ("range 10.0.0.1-10.0.0.50 reserved", ["10.0.0.1", "10.0.0.50"]),
        ("loopback ::1 and 127.0.0.1", ["::1", "127.0.0.1"]),
        ("1::, 1:2:3:4:5:6:7:: both valid", ["1::", "1:2:3:4:5:6:7:0"]),
        ("host 10.0.0.5/24 is the printer", ["10.0.0.5"]),
        ("&lt;10.0.0.8&gt; in escaped html", ["10.0.0.8"]),
    ],
)
def test_finds_addresses(text: str, expected: list[str]) -> None:
    assert extract_ips(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "octet too big 999.1.1.1",
        "only three parts 1.2.3",
        "version 1.2.3.4.5 installed",
        "build 5.1.2.3.4 and v1.2.3.4",
        "Windows 10.0.19045.3803",
        "meeting at 10:30, again at 10:30:45",
        "MAC aa:bb:cc:dd:ee:ff on port 3",
        "EUI-64 aa:bb:cc:dd:ee:ff:00:11",
        "leading zeros 010.001.002.003 are ambiguous",
        "C++ std::vector and Status :: open",
        "ratio 1:1:1 and 16:9",
        "the network 10.0.0.0/24 is a subnet, not a host",
        "hexword dead:beef:x",
        "",
    ],
)
def test_rejects_non_addresses(text: str) -> None:
    assert extract_ips(text) == []


def test_order_of_first_appearance_and_dedupe_after_normalisation() -> None:
    text = "10.0.0.2 then 2001:DB8::1, 10.0.0.1, 10.0.0.2 again, 2001:db8:0::1 and ::ffff:10.0.0.1"
    assert extract_ips(text) == ["10.0.0.2", "2001:db8::1", "10.0.0.1"]


def test_cap_defaults_to_twenty_and_is_configurable() -> None:
    text = " ".join(f"10.0.1.{i}" for i in range(1, 31))
    assert extract_ips(text) == [f"10.0.1.{i}" for i in range(1, 21)]
    assert extract_ips(text, limit=3) == ["10.0.1.1", "10.0.1.2", "10.0.1.3"]


def test_networks_are_reported_separately() -> None:
    text = (
        "subnet 10.20.0.0/24, host 10.20.0.15/24, mask 192.168.1.0/255.255.255.0, "
        "v6 2001:db8:ac::/48, bogus 10.0.0.7/33, single 10.9.9.9"
    )
    assert extract_networks(text) == ["10.20.0.0/24", "192.168.1.0/24", "2001:db8:ac::/48"]
    assert extract_ips(text) == ["10.20.0.15", "10.0.0.7", "10.9.9.9"]


def test_html_to_text_keeps_addresses_apart() -> None:
    assert html_to_text("<b>10.0.0.1</b><br>10.0.0.2&nbsp;x").split() == [
        "10.0.0.1",
        "10.0.0.2",
        "x",
    ]


def test_mentions_carry_positions_for_redaction() -> None:
    text = "a 10.0.0.1 b fe80::1"
    spans = [text[m.start : m.end] for m in iter_ip_mentions(text)]
    assert spans == ["10.0.0.1", "fe80::1"]


@given(
    ip=st.ip_addresses(),
    before=st.lists(WORD, max_size=4),
    after=st.lists(WORD, max_size=4),
    left=BEFORE,
    right=AFTER,
)
def test_any_address_embedded_in_words_is_found(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
    before: list[str],
    after: list[str],
    left: str,
    right: str,
) -> None:
    assume(findable(ip))
    text = " ".join(before) + left + str(ip) + right + " ".join(after)
    assert extract_ips(text, limit=100) == [expected_form(ip)]


@given(ip=st.ip_addresses(v=6))
def test_uncompressed_and_uppercase_ipv6_is_normalised(ip: ipaddress.IPv6Address) -> None:
    assume(findable(ip))
    assert extract_ips(f"addr {ip.exploded.upper()} down") == [expected_form(ip)]


@given(ips=st.lists(st.ip_addresses(), min_size=1, max_size=8), glue=WORD)
def test_many_addresses_keep_order_and_are_unique(
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address], glue: str
) -> None:
    ips = [ip for ip in ips if findable(ip)]
    text = f" {glue} ".join(str(ip) for ip in ips + ips)
    expected = list(dict.fromkeys(expected_form(ip) for ip in ips))
    assert extract_ips(text, limit=100) == expected


@given(st.text())
def test_arbitrary_text_never_breaks_and_only_valid_addresses_come_out(text: str) -> None:
    for value in extract_ips(text):
        assert ipaddress.ip_address(value).compressed == value
    for value in extract_networks(text):
        assert str(ipaddress.ip_network(value)) == value


@pytest.mark.parametrize("unit", ["1.", "a:", "1:", "::", "0.0.0.0/", "1.1.1.1.", "<b"])
def test_long_adversarial_input_stays_fast(unit: str) -> None:
    text = unit * (40_000 // len(unit))
    started = time.perf_counter()
    extract_ips(text)
    extract_networks(text)
    assert time.perf_counter() - started < 5.0

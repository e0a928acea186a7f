"""Which addresses a tenant's ``sdp_url`` may make this service call (SSRF rules).

The service sends a tenant's SDP key to whatever ``sdp_url`` names, so an admin-supplied URL
must not reach the cloud metadata service, the Ray dashboard or PostgreSQL on this host:

- always refused: credentials in the URL (``http://user:pass@host``), schemes other than
  http/https, the metadata services of the major clouds (``core/network/cloud_metadata.py``:
  also the ones outside link-local space, such as Alibaba's 100.100.100.200 and AWS'
  fd00:ec2::254, and names such as ``metadata.google.internal``), link-local addresses
  (169.254.0.0/16, fe80::/10), multicast, broadcast and reserved ranges;
- the operator's refused networks (``AI_AGENTS_SDP_REFUSED_NETWORKS``; on KubeRay the cluster's
  own pod and service ranges, where the Ray head, its dashboard and an in-cluster PostgreSQL
  live), unless a network at least as narrow in ``AI_AGENTS_SDP_ALLOWED_NETWORKS`` holds the
  address;
- loopback (127.0.0.0/8, ::1, 0.0.0.0/8, ``localhost``) only when the operator allows it
  (``AI_AGENTS_SDP_ALLOW_LOOPBACK``: the embedded demo and local simulators live there);
- other non-public (private) addresses — where on-premises SDP lives — are allowed, unless the
  operator lists networks in ``AI_AGENTS_SDP_ALLOWED_NETWORKS``: then a private address must lie
  in one of them;
- public addresses are allowed (cloud SDP).

The URL is checked when an admin sets it (literal addresses and ``localhost`` names) and every
resolved address is checked again when the pipeline connects (``guarded_http_client``), so a
name that later resolves somewhere forbidden (DNS rebinding) is refused at call time too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.network.cloud_metadata import metadata_name, metadata_service

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


class SdpUrlRefused(ValueError):
    """The URL or address is not one this service may call; the message says which rule."""


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (``10.20.0.0/16``, ``fd00::/8``) or single addresses; ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a network in CIDR notation: {value!r}") from None
    return tuple(networks)


def _unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form smuggles (mapped, NAT64, 6to4), else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_class(address: IPAddress) -> str:
    """One of: metadata, link-local, loopback, multicast, reserved, private, public."""
    address = _unwrap(address)
    if metadata_service(address) is not None:
        return "metadata"
    if address.is_link_local:
        return "link-local"
    if address.is_loopback or address.is_unspecified or address in _THIS_NETWORK:
        return "loopback"
    if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        return "multicast"
    if address.is_reserved:
        return "reserved"
    return "public" if address.is_global else "private"


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


_NEVER = ("metadata", "link-local", "multicast", "reserved")


def _describe(address: IPAddress) -> str:
    kind = address_class(address)
    if kind == "metadata":
        plain = _unwrap(address)
        where = ", link-local" if plain.is_link_local else ""
        return f"a cloud metadata service ({metadata_service(plain)}{where})"
    return f"a {kind} address"


def check_url_always(url: str) -> None:
    """The rules no setting relaxes (used by the admin schema on create and update alike)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SdpUrlRefused("the SDP URL must use http or https")
    if parts.username is not None or parts.password is not None:
        raise SdpUrlRefused(
            "the SDP URL must not contain credentials (user:password@); set the SDP key instead"
        )
    if metadata_name(parts.hostname or ""):
        raise SdpUrlRefused("the SDP URL names a cloud metadata service, which is never allowed")
    address = _literal(parts.hostname or "")
    if address is not None and address_class(address) in _NEVER:
        raise SdpUrlRefused(f"the SDP URL names {_describe(address)}, which is never allowed")


@dataclass(frozen=True)
class SdpUrlPolicy:
    """The operator's part of the rules; the default is the strict one (no loopback)."""

    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    refused_networks: tuple[IPNetwork, ...] = ()

    def check_address(self, address: str | IPAddress, host: str | None = None) -> None:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        kind = address_class(ip)
        named = f"{host} ({ip})" if host and host != str(ip) else str(ip)
        if kind in _NEVER:
            raise SdpUrlRefused(f"SDP address {named} is {_describe(ip)}, which is never allowed")
        if host is not None and metadata_name(host):
            raise SdpUrlRefused(f"SDP host {host} is a cloud metadata service, never allowed")
        refused = self._refused_network(_unwrap(ip))
        if refused is not None:
            raise SdpUrlRefused(
                f"SDP address {named} is in {refused} (AI_AGENTS_SDP_REFUSED_NETWORKS: the "
                "cluster's own addresses); a network at least as narrow in "
                "AI_AGENTS_SDP_ALLOWED_NETWORKS would allow it"
            )
        if kind == "loopback" and not self.allow_loopback:
            raise SdpUrlRefused(
                f"SDP address {named} is loopback; allowed only with "
                "AI_AGENTS_SDP_ALLOW_LOOPBACK=true"
            )
        if kind == "private" and self.allowed_networks:
            plain = _unwrap(ip)
            if not any(
                plain.version == net.version and plain in net for net in self.allowed_networks
            ):
                raise SdpUrlRefused(f"SDP address {named} is not in AI_AGENTS_SDP_ALLOWED_NETWORKS")

    def _refused_network(self, ip: IPAddress) -> IPNetwork | None:
        """The narrowest refused network holding ``ip``, unless an allowed network at least as
        narrow holds it too (so ``10.96.5.7/32`` allowed beats ``10.96.0.0/12`` refused, and
        ``10.0.0.0/8`` allowed does not)."""
        refused = [n for n in self.refused_networks if n.version == ip.version and ip in n]
        if not refused:
            return None
        narrowest = max(refused, key=lambda n: n.prefixlen)
        if any(
            n.version == ip.version and ip in n and n.prefixlen >= narrowest.prefixlen
            for n in self.allowed_networks
        ):
            return None
        return narrowest

    def check_url(self, url: str) -> None:
        """Everything decidable without DNS: the fixed rules, literal addresses and
        ``localhost`` names. Other names are checked when the pipeline connects."""
        check_url_always(url)
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
        address = _literal(host)
        if address is not None:
            self.check_address(address)
        elif host == "localhost" or host.endswith(".localhost"):
            self.check_address(ipaddress.ip_address("127.0.0.1"), host)

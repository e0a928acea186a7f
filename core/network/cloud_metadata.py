"""The instance-metadata services of the major clouds: addresses and names no tenant's SDP URL
may reach, whatever the operator allows.

A metadata service hands out the machine's cloud credentials to whoever on the machine asks,
so the SSRF rules (``core/sdp_url_policy.py``) refuse these always: before the loopback and
private-network settings are considered, and in every form an address can take (IPv4-mapped,
NAT64, 6to4, a single number). Most are link-local (169.254.0.0/16, refused anyway); the ones
that are not are why this list exists: Alibaba's sits in the carrier-grade NAT range
(100.64.0.0/10), Oracle Classic's in 192.0.0.0/24, AWS', Google's and Oracle's IPv6 endpoints
in unique-local space (fc00::/7) — all "private", which the default rules allow — and Azure's
WireServer at a public address.

Sources (each provider's documentation of its metadata service):

- AWS EC2 IMDS: 169.254.169.254 and fd00:ec2::254 — "Access instance metadata for an EC2
  instance" (docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html);
  ECS task metadata 169.254.170.2 ("Amazon ECS task metadata endpoint version 2"); EKS Pod
  Identity agent 169.254.170.23 and fd00:ec2::23 ("Set up the Amazon EKS Pod Identity Agent").
- Google Cloud: metadata.google.internal, 169.254.169.254 and, for IPv6-only instances,
  fd20:ce::254 — "Access VM metadata" (cloud.google.com/compute/docs/metadata/querying-metadata);
  metadata.goog is the same server's other name.
- Microsoft Azure: IMDS 169.254.169.254 — "Azure Instance Metadata Service"
  (learn.microsoft.com/azure/virtual-machines/instance-metadata-service); WireServer
  168.63.129.16 — "What is IP address 168.63.129.16?"
  (learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16).
- Alibaba Cloud ECS: 100.100.100.200 — "Instance metadata"
  (alibabacloud.com/help/en/ecs/user-guide/view-instance-metadata).
- Oracle Cloud Infrastructure: 169.254.169.254 and fd00:c1::a9fe:a9fe — "Getting Instance
  Metadata" (docs.oracle.com/iaas/Content/Compute/Tasks/gettingmetadata.htm); Oracle Cloud
  Classic: 192.0.0.192 — "Retrieving Instance Metadata" (Compute Classic documentation).
- DigitalOcean: 169.254.169.254 — "Droplet Metadata API"
  (docs.digitalocean.com/reference/api/metadata/).
- Tencent Cloud: metadata.tencentyun.com, 169.254.0.23 — "Querying Instance Metadata".
- OpenStack, Hetzner Cloud, IBM Cloud VPC, Huawei Cloud: 169.254.169.254.
"""

from __future__ import annotations

import ipaddress

CLOUD_METADATA_ADDRESSES: dict[str, str] = {
    "169.254.169.254": "AWS, Google Cloud, Azure, Oracle, DigitalOcean, OpenStack, ... metadata",
    "169.254.170.2": "AWS ECS task metadata",
    "169.254.170.23": "AWS EKS Pod Identity agent",
    "169.254.0.23": "Tencent Cloud metadata",
    "fd00:ec2::254": "AWS instance metadata (IPv6)",
    "fd00:ec2::23": "AWS EKS Pod Identity agent (IPv6)",
    "fd20:ce::254": "Google Cloud metadata (IPv6)",
    "168.63.129.16": "Azure WireServer",
    "100.100.100.200": "Alibaba Cloud metadata",
    "fd00:c1::a9fe:a9fe": "Oracle Cloud metadata (IPv6)",
    "192.0.0.192": "Oracle Cloud Classic metadata",
}
CLOUD_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
_ADDRESSES = {ipaddress.ip_address(a): what for a, what in CLOUD_METADATA_ADDRESSES.items()}


def metadata_service(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Whose metadata service ``address`` is (already unwrapped from IPv6 forms), or None."""
    return _ADDRESSES.get(address)


def metadata_name(host: str) -> bool:
    """True for a host name that names a metadata service (case and a final dot ignored)."""
    return host.rstrip(".").lower() in CLOUD_METADATA_NAMES

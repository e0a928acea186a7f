"""The two demo clients of the MSP and the words their tickets use.

Acme and Globex run different products (FortiGate vs. Cisco ASA, Veeam vs. Acronis, ...) so a
note that cites the other tenant's KB or hosts is visibly wrong, and both use 10.x address space
so an IP lookup that ignores the tenant finds the wrong machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TenantProfile:
    name: str
    seed: int
    resolved_count: int
    open_count: int
    resolved_id_base: int
    open_id_base: int
    vocabulary: dict[str, str]
    people: tuple[str, ...]
    sdp_api_key: str
    sdp_edition: str
    greetings: tuple[str, ...] = field(default=("Hi,", "Hello IT,", "Hi team,", "Good morning,"))


TENANTS: dict[str, TenantProfile] = {
    "acme": TenantProfile(
        name="acme",
        seed=1701,
        resolved_count=210,
        open_count=30,
        resolved_id_base=110_000,
        open_id_base=119_000,
        vocabulary={
            "company": "Acme Manufacturing",
            "domain": "acme-corp.example",
            "vpn_client": "FortiClient",
            "backup": "Veeam Backup & Replication",
            "mfa": "Microsoft Authenticator",
            "wifi": "ACME-CORP",
            "share_name": "Finance",
            "app": "Epicor ERP",
            "site": "Springfield HQ",
            "site2": "the Shelbyville plant",
            "portal": "portal.acme-corp.example",
        },
        people=(
            "Dana Whitfield",
            "Marcus Oyelaran",
            "Priya Raman",
            "Tom Bergstrom",
            "Elena Kovacs",
            "Jamal Peters",
            "Sofia Lindqvist",
            "Greg Hollis",
            "Aisha Mensah",
            "Victor Huang",
            "Rachel Dunmore",
            "Liam O'Connell",
            "Nora Castillo",
            "Ben Achterberg",
        ),
        sdp_api_key="acme-sdp-demo-key",
        sdp_edition="onprem",
    ),
    "globex": TenantProfile(
        name="globex",
        seed=4242,
        resolved_count=180,
        open_count=30,
        resolved_id_base=210_000,
        open_id_base=219_000,
        vocabulary={
            "company": "Globex Logistics",
            "domain": "globex.example",
            "vpn_client": "Cisco AnyConnect",
            "backup": "Acronis Cyber Protect",
            "mfa": "Duo Mobile",
            "wifi": "GLOBEX",
            "share_name": "Operations",
            "app": "WMS",
            "site": "Cypress Creek HQ",
            "site2": "the Harbor warehouse",
            "portal": "tracking.globex.example",
        },
        people=(
            "Hank Scorpio",
            "Mindy Alvarez",
            "Owen Brightwater",
            "Fatima Zahedi",
            "Carl Jorgensen",
            "Lucia Ferraro",
            "Derek Nakamura",
            "Ingrid Solberg",
            "Samuel Adeyemi",
            "Keiko Tanabe",
            "Paul Desrosiers",
            "Hannah Weiss",
        ),
        sdp_api_key="globex-sdp-demo-key",
        sdp_edition="cloud",
    ),
}


def tenant_profile(tenant: str) -> TenantProfile:
    try:
        return TENANTS[tenant]
    except KeyError:
        known = ", ".join(sorted(TENANTS))
        raise ValueError(f"unknown demo tenant {tenant!r} (known: {known})") from None

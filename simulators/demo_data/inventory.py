"""Read a tenant's asset CSV and pick addresses from it for generated tickets.

Tickets must mention addresses the cross-reference can really resolve: a host row's own address
(host match) or a free address inside a subnet row (subnet match).
"""

from __future__ import annotations

import csv
import ipaddress
import random
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("address", "hostname", "role", "owner", "location")
# Client addresses start here inside a subnet: the low range is gateways and infrastructure.
_CLIENT_OFFSET = 20


@dataclass(frozen=True)
class AssetRow:
    address: str
    hostname: str
    role: str
    owner: str
    location: str

    @property
    def is_subnet(self) -> bool:
        return "/" in self.address

    def has_role(self, roles: tuple[str, ...]) -> bool:
        role = self.role.casefold()
        return any(wanted.casefold() in role for wanted in roles)


def read_assets(path: Path) -> list[AssetRow]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path.name}: columns must be {','.join(COLUMNS)}")
        return [AssetRow(**{name: row[name].strip() for name in COLUMNS}) for row in reader]


def hosts_with_role(rows: list[AssetRow], roles: tuple[str, ...]) -> list[AssetRow]:
    return [row for row in rows if not row.is_subnet and row.has_role(roles)]


def client_address(rng: random.Random, rows: list[AssetRow], roles: tuple[str, ...]) -> str:
    """A plausible DHCP-assigned address inside a matching IPv4 subnet, never a listed host."""
    subnets = [
        ipaddress.IPv4Network(row.address)
        for row in rows
        if row.is_subnet and row.has_role(roles) and ":" not in row.address
    ]
    if not subnets:
        raise ValueError(f"no IPv4 subnet with role {roles!r} in the inventory")
    hosts = {row.address for row in rows if not row.is_subnet}
    network = rng.choice(subnets)
    while True:
        candidate = str(
            network.network_address + rng.randrange(_CLIENT_OFFSET, network.num_addresses - 1)
        )
        if candidate not in hosts:
            return candidate

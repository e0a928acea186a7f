"""What a recurring MSP problem looks like, so tickets can be generated instead of typed out.

A scenario is one underlying problem (say, VPN dropping because of dead-peer detection) told in
several voices. Resolved tickets use one set of phrasings and open tickets another, so the
similar-ticket search has to match on meaning and shared symptoms, not copied sentences.
Templates are ``str.format`` strings over the tenant's vocabulary plus the per-ticket fields
``ip``/``host`` (an inventory host with one of ``asset_roles``) and ``client_ip`` (an address
inside an inventory subnet with one of ``client_roles``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    key: str
    category: str
    kb: str | None
    asset_roles: tuple[str, ...]
    subjects: tuple[str, ...]
    bodies: tuple[str, ...]
    resolutions: tuple[str, ...]
    open_subjects: tuple[str, ...]
    open_bodies: tuple[str, ...]
    client_roles: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ("Medium", "Medium", "High", "Low")

    def __post_init__(self) -> None:
        for body in self.open_bodies:
            if "{ip}" not in body and "{client_ip}" not in body:
                raise ValueError(f"{self.key}: open tickets must mention an inventory address")
        if not self.asset_roles and not self.client_roles:
            raise ValueError(f"{self.key}: needs asset_roles or client_roles")

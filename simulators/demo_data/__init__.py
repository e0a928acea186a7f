"""Deterministic demo data for two MSP clients, ``acme`` and ``globex``.

Resolved tickets (the history the similar-ticket search learns from), open tickets written to
relate to that history, shipped Markdown KB articles and an asset inventory CSV per tenant. The
tenants deliberately reuse the same 10.x addresses for different machines, so tenant isolation in
the IP cross-reference is observable. ``expected_links`` says what each open ticket was written
to relate to, so tests can check that a note cites it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .generator import SCENARIOS, ExpectedLinks, generate
from .inventory import AssetRow, read_assets
from .tenants import TENANTS, tenant_profile

__all__ = [
    "DATA_DIR",
    "EVAL_ANCHOR",
    "SCENARIOS",
    "TENANTS",
    "AssetRow",
    "DemoDataset",
    "ExpectedLinks",
    "load_demo_dataset",
    "seed_servicedesk",
]

DATA_DIR = Path(__file__).resolve().parent
# The history the labelled retrieval set (retrieval_eval.jsonl) is scored against ends here, so
# the generated tickets, and so every label, are the same on every run.
EVAL_ANCHOR = datetime(2026, 1, 15, tzinfo=UTC)


@dataclass(frozen=True)
class DemoDataset:
    tenant: str
    resolved_tickets: list[dict[str, Any]]
    open_tickets: list[dict[str, Any]]
    kb_dir: Path
    assets_csv: Path
    expected_links: dict[str, ExpectedLinks]
    sdp_api_key: str
    sdp_edition: str
    resolved_by_scenario: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scenario_of: dict[str, str] = field(default_factory=dict)

    def kb_files(self) -> list[Path]:
        return sorted(self.kb_dir.glob("*.md"))

    def assets(self) -> list[AssetRow]:
        return read_assets(self.assets_csv)


def load_demo_dataset(tenant: str, *, now: datetime | None = None) -> DemoDataset:
    """The tenant's dataset, with history ending at ``now`` (default: today 00:00 UTC).

    The default is day-granular so repeated loads on the same day are identical; pass ``now``
    for full reproducibility.
    """
    profile = tenant_profile(tenant)
    anchor = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    kb_dir = DATA_DIR / "kb" / tenant
    assets_csv = DATA_DIR / "assets" / f"{tenant}.csv"
    tickets = generate(profile, read_assets(assets_csv), kb_dir, anchor)
    return DemoDataset(
        tenant=tenant,
        resolved_tickets=tickets.resolved,
        open_tickets=tickets.open,
        kb_dir=kb_dir,
        assets_csv=assets_csv,
        expected_links=tickets.expected_links,
        sdp_api_key=profile.sdp_api_key,
        sdp_edition=profile.sdp_edition,
        resolved_by_scenario=tickets.resolved_by_scenario,
        scenario_of=tickets.scenario_of,
    )


def seed_servicedesk(state: Any, *, now: datetime | None = None) -> None:
    """Load both tenants into the ServiceDesk Plus simulator (its ``--seed-demo`` hook).

    Portals that already exist (created with ``--portal``) are reused and tickets already present
    are skipped, so seeding twice is harmless.
    """
    for tenant in TENANTS:
        data = load_demo_dataset(tenant, now=now)
        if tenant not in state.portals:
            state.add_portal(tenant, data.sdp_api_key, data.sdp_edition)
        existing = state.portal(tenant).requests
        for ticket in [*data.resolved_tickets, *data.open_tickets]:
            if ticket["id"] not in existing:
                state.add_request(tenant, ticket)

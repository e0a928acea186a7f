"""Turn scenarios into ServiceDesk Plus v3 request objects, deterministically per tenant.

Every random choice comes from one ``random.Random`` seeded per tenant and every timestamp is
relative to an explicit anchor, so the same tenant and anchor always give identical tickets
(tests compare two loads, the demo and the simulator must agree on ids).
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import scenarios_devices, scenarios_network, scenarios_operations, scenarios_workplace
from .inventory import AssetRow, client_address, hosts_with_role
from .scenario import Scenario
from .tenants import TenantProfile

SCENARIOS: tuple[Scenario, ...] = (
    scenarios_network.SCENARIOS
    + scenarios_workplace.SCENARIOS
    + scenarios_operations.SCENARIOS
    + scenarios_devices.SCENARIOS
)
HISTORY_DAYS = 120
MIN_RESOLVED_PER_SCENARIO = 3
# Real histories hold tickets closed without a fix: the same symptoms, a resolution that says
# nothing about what fixed them. A share of the extra resolved tickets (never the first few of a
# scenario) gets one; they are no right answer for the scenario (``resolved_by_scenario``).
NO_FIX_SHARE = 0.08
NO_FIX_RESOLUTIONS = (
    "No response from the user after three reminders; closed.",
    "Duplicate of an existing ticket, closed.",
    "User reports it works again, closing.",
    "Could not reproduce; the user will open a new ticket if it happens again.",
    "Closed at the requester's request.",
)
# Hours from creation to resolution, by priority: urgent work is closed faster.
_RESOLUTION_HOURS = {
    "Urgent": (0.5, 4.0),
    "High": (1.0, 12.0),
    "Medium": (2.0, 48.0),
    "Low": (4.0, 96.0),
}
_SIGN_OFFS = ("Thanks,", "Thank you,", "Regards,", "Cheers,", "Many thanks,")


@dataclass(frozen=True)
class ExpectedLinks:
    """What an open ticket's note should be able to cite: it was written to match these."""

    scenario: str
    category: str
    ticket_ids: tuple[str, ...]
    kb_files: tuple[str, ...]
    asset_ips: tuple[str, ...]

    @property
    def kb_ids(self) -> tuple[str, ...]:
        """The article ids the KB importer derives (the lower-case file stem): ``kb:<id>``."""
        return tuple(name.removesuffix(".md").lower() for name in self.kb_files)

    @property
    def citations(self) -> set[str]:
        """Citation ids a note about this ticket may use, as in ``TicketContext.citations()``."""
        return (
            {f"ticket:{i}" for i in self.ticket_ids}
            | {f"kb:{i}" for i in self.kb_ids}
            | {f"asset:{ip}" for ip in self.asset_ips}
        )


@dataclass(frozen=True)
class GeneratedTickets:
    resolved: list[dict[str, Any]]
    open: list[dict[str, Any]]
    expected_links: dict[str, ExpectedLinks]
    # scenario key -> ids of its resolved tickets that record a fix (right answers)
    resolved_by_scenario: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # resolved ticket id -> its scenario (also for tickets closed without a fix)
    scenario_of: dict[str, str] = field(default_factory=dict)


@dataclass
class _Draft:
    scenario: Scenario
    created: datetime
    ticket: dict[str, Any]
    addresses: tuple[str, ...]
    fixed: bool = True  # its resolution says what fixed it (not "closed, no response")


def generate(
    profile: TenantProfile, assets: list[AssetRow], kb_dir: Path, anchor: datetime
) -> GeneratedTickets:
    rng = random.Random(profile.seed)
    plan = _resolved_plan(rng, profile)
    guaranteed = len(SCENARIOS) * MIN_RESOLVED_PER_SCENARIO
    resolved = _number(
        [
            _resolved_draft(rng, profile, s, assets, anchor, may_be_unfixed=n >= guaranteed)
            for n, s in enumerate(plan)
        ],
        profile.resolved_id_base,
    )
    opened = _number(
        [_open_draft(rng, profile, s, assets, anchor) for s in _open_plan(rng, profile)],
        profile.open_id_base,
    )
    by_scenario: dict[str, list[str]] = {}
    for draft in resolved:
        if draft.fixed:
            by_scenario.setdefault(draft.scenario.key, []).append(draft.ticket["id"])
    links = {}
    for draft in opened:
        kb = draft.scenario.kb
        kb_files = (f"{kb}.md",) if kb and (kb_dir / f"{kb}.md").is_file() else ()
        links[draft.ticket["id"]] = ExpectedLinks(
            scenario=draft.scenario.key,
            category=draft.scenario.category,
            ticket_ids=tuple(by_scenario.get(draft.scenario.key, ())),
            kb_files=kb_files,
            asset_ips=draft.addresses,
        )
    return GeneratedTickets(
        [d.ticket for d in resolved],
        [d.ticket for d in opened],
        links,
        {key: tuple(ids) for key, ids in by_scenario.items()},
        {d.ticket["id"]: d.scenario.key for d in resolved},
    )


def _resolved_plan(rng: random.Random, profile: TenantProfile) -> list[Scenario]:
    """Every scenario a few times (so every open ticket has history), the rest at random."""
    plan = [s for s in SCENARIOS for _ in range(MIN_RESOLVED_PER_SCENARIO)]
    plan += rng.choices(SCENARIOS, k=max(0, profile.resolved_count - len(plan)))
    return plan


def _open_plan(rng: random.Random, profile: TenantProfile) -> list[Scenario]:
    extra = max(0, profile.open_count - len(SCENARIOS))
    return list(SCENARIOS) + rng.sample(SCENARIOS, k=min(extra, len(SCENARIOS)))


def _number(drafts: list[_Draft], base: int) -> list[_Draft]:
    """SDP ids grow with creation time; assign them in that order."""
    drafts.sort(key=lambda d: d.created)
    for index, draft in enumerate(drafts, start=1):
        draft.ticket["id"] = str(base + index)
    return drafts


def _resolved_draft(
    rng: random.Random,
    profile: TenantProfile,
    scenario: Scenario,
    assets: list[AssetRow],
    anchor: datetime,
    *,
    may_be_unfixed: bool,
) -> _Draft:
    values = _ticket_values(rng, profile, scenario, assets)
    body = rng.choice(scenario.bodies)
    priority = rng.choice(scenario.priorities)
    day = anchor - timedelta(days=rng.randint(1, HISTORY_DAYS))
    created = day.replace(hour=rng.randint(7, 17), minute=rng.randint(0, 59))
    low, high = _RESOLUTION_HOURS[priority]
    resolved_at = min(
        created + timedelta(hours=rng.uniform(low, high)), anchor - timedelta(minutes=1)
    )
    resolved_at = resolved_at.replace(second=0, microsecond=0)
    ticket = _ticket(
        rng,
        profile,
        scenario,
        values,
        rng.choice(scenario.subjects),
        body,
        priority,
        created,
        last_updated=resolved_at,
        status="Resolved",
    )
    ticket["resolved_time"] = _sdp_time(resolved_at)
    fixed = not (may_be_unfixed and rng.random() < NO_FIX_SHARE)
    templates = scenario.resolutions if fixed else NO_FIX_RESOLUTIONS
    resolution = rng.choice(templates).format_map(values)
    ticket["resolution"] = {"content": html.escape(resolution, quote=False)}
    return _Draft(scenario, created, ticket, _addresses(body, values), fixed)


def _open_draft(
    rng: random.Random,
    profile: TenantProfile,
    scenario: Scenario,
    assets: list[AssetRow],
    anchor: datetime,
) -> _Draft:
    values = _ticket_values(rng, profile, scenario, assets)
    subject = rng.choice(scenario.open_subjects)
    body = rng.choice(scenario.open_bodies)
    created = anchor - timedelta(minutes=rng.randint(10, 600))
    ticket = _ticket(
        rng,
        profile,
        scenario,
        values,
        subject,
        body,
        rng.choice(scenario.priorities),
        created,
        last_updated=created,
        status="Open",
    )
    return _Draft(scenario, created, ticket, _addresses(subject + body, values))


def _ticket_values(
    rng: random.Random, profile: TenantProfile, scenario: Scenario, assets: list[AssetRow]
) -> dict[str, str]:
    values = dict(profile.vocabulary)
    roles = tuple(role.format_map(values) for role in scenario.asset_roles)
    if roles:
        candidates = hosts_with_role(assets, roles)
        if not candidates:
            raise ValueError(f"{profile.name}: no asset with role {roles!r} ({scenario.key})")
        host = rng.choice(candidates)
        values["ip"], values["host"] = host.address, host.hostname
    if scenario.client_roles:
        values["client_ip"] = client_address(rng, assets, scenario.client_roles)
    return values


def _addresses(template: str, values: dict[str, str]) -> tuple[str, ...]:
    """Inventory addresses a ticket mentions: exactly the ones its template put there."""
    return tuple(values[key] for key in ("ip", "client_ip") if f"{{{key}}}" in template)


def _ticket(
    rng: random.Random,
    profile: TenantProfile,
    scenario: Scenario,
    values: dict[str, str],
    subject: str,
    body: str,
    priority: str,
    created: datetime,
    *,
    last_updated: datetime,
    status: str,
) -> dict[str, Any]:
    name = rng.choice(profile.people)
    email = ".".join(part.lower().replace("'", "") for part in name.split()[:2])
    paragraphs = "<br>".join(
        html.escape(p, quote=False) for p in body.format_map(values).split("\n")
    )
    signature = rng.choice(
        (
            "",
            "",
            f"<br>Ext. {rng.randint(2100, 2999)}",
            f"<br>Mobile: +1 (312) 555-01{rng.randint(10, 99)}",
        )
    )
    description = (
        f"<div>{rng.choice(profile.greetings)}<br><br>{paragraphs}<br><br>"
        f"{rng.choice(_SIGN_OFFS)}<br>{html.escape(name)}{signature}</div>"
    )
    return {
        "id": "",
        "subject": subject.format_map(values),
        "description": description,
        "status": {"name": status},
        "priority": {"name": priority},
        "requester": {"name": name, "email_id": f"{email}@{values['domain']}"},
        "created_time": _sdp_time(created),
        "last_updated_time": _sdp_time(last_updated),
        "category": {"name": scenario.category},
    }


def _sdp_time(moment: datetime) -> dict[str, str]:
    """SDP's time object: epoch milliseconds as a string plus a display form."""
    millis = int(moment.timestamp() * 1000)
    display = f"{moment:%b} {moment.day}, {moment.year} {moment:%I:%M %p}"
    return {"value": str(millis), "display_value": display}

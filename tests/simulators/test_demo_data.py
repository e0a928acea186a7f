"""The demo dataset: deterministic, well-formed, and its open tickets really relate to history."""

from __future__ import annotations

import csv
import ipaddress
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.text.ticket_text import extract_ips
from simulators.demo_data import (
    DATA_DIR,
    SCENARIOS,
    TENANTS,
    DemoDataset,
    load_demo_dataset,
    seed_servicedesk,
)

NOW = datetime(2025, 6, 1, tzinfo=UTC)
DOTTED = re.compile(r"(?<![\d.])\d+(?:\.\d+){3}(?![\d.]*\d)")


@pytest.fixture(scope="module", params=sorted(TENANTS))
def dataset(request: pytest.FixtureRequest) -> DemoDataset:
    return load_demo_dataset(request.param, now=NOW)


def ms(value: dict[str, str]) -> datetime:
    return datetime.fromtimestamp(int(value["value"]) / 1000, tz=UTC)


def networks(data: DemoDataset) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(row.address, strict=False) for row in data.assets()]


def test_two_loads_are_equal() -> None:
    for tenant in TENANTS:
        assert load_demo_dataset(tenant, now=NOW) == load_demo_dataset(tenant, now=NOW)
        assert load_demo_dataset(tenant) == load_demo_dataset(tenant)
    assert load_demo_dataset("acme", now=NOW) != load_demo_dataset("acme", now=NOW + timedelta(1))


def test_unknown_tenant_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown demo tenant"):
        load_demo_dataset("initech")


def test_counts(dataset: DemoDataset) -> None:
    assert 150 <= len(dataset.resolved_tickets) <= 250
    assert 25 <= len(dataset.open_tickets) <= 35
    assert 8 <= len(dataset.kb_files()) <= 14
    assert len(dataset.assets()) >= 20


def test_ids_unique_per_tenant_and_distinct_between_tenants() -> None:
    ids = {}
    for tenant in TENANTS:
        data = load_demo_dataset(tenant, now=NOW)
        tenant_ids = [t["id"] for t in data.resolved_tickets + data.open_tickets]
        assert all(isinstance(i, str) and i.isdigit() for i in tenant_ids)
        assert len(tenant_ids) == len(set(tenant_ids))
        ids[tenant] = set(tenant_ids)
    assert not ids["acme"] & ids["globex"]


def test_resolved_tickets_have_the_sdp_v3_shape(dataset: DemoDataset) -> None:
    for ticket in dataset.resolved_tickets:
        assert ticket["status"] == {"name": "Resolved"}
        assert ticket["subject"] and ticket["description"].startswith("<div>")
        assert ticket["priority"]["name"] in {"Low", "Medium", "High", "Urgent"}
        assert ticket["requester"]["name"]
        assert re.fullmatch(r"[a-z.]+@[a-z.-]+\.example", ticket["requester"]["email_id"])
        assert ticket["resolution"]["content"]
        assert ticket["category"]["name"]
        for field in ("created_time", "resolved_time", "last_updated_time"):
            assert ticket[field]["value"].isdigit() and ticket[field]["display_value"]
        created, resolved = ms(ticket["created_time"]), ms(ticket["resolved_time"])
        assert NOW - timedelta(days=121) <= created < resolved < NOW


def test_history_is_spread_over_the_period(dataset: DemoDataset) -> None:
    days = {(NOW - ms(t["created_time"])).days // 30 for t in dataset.resolved_tickets}
    assert days == {0, 1, 2, 3}


def test_open_tickets_are_new_and_open(dataset: DemoDataset) -> None:
    resolved_subjects = {t["subject"] for t in dataset.resolved_tickets}
    for ticket in dataset.open_tickets:
        assert ticket["status"] == {"name": "Open"}
        assert "resolution" not in ticket and "resolved_time" not in ticket
        assert NOW - timedelta(days=1) < ms(ticket["created_time"]) < NOW
        assert ticket["subject"] not in resolved_subjects  # same problem, different words


def test_every_open_ticket_has_expected_links_that_exist(dataset: DemoDataset) -> None:
    resolved = {t["id"]: t for t in dataset.resolved_tickets}
    nets = networks(dataset)
    assert set(dataset.expected_links) == {t["id"] for t in dataset.open_tickets}
    for ticket in dataset.open_tickets:
        links = dataset.expected_links[ticket["id"]]
        assert links.ticket_ids and links.asset_ips
        for ticket_id in links.ticket_ids:
            assert resolved[ticket_id]["category"]["name"] == links.category
        assert ticket["category"]["name"] == links.category
        for name in links.kb_files:
            assert (dataset.kb_dir / name).is_file()
        assert f"ticket:{links.ticket_ids[0]}" in links.citations
        assert {f"kb:{i}" for i in links.kb_ids} <= links.citations
        assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in links.kb_ids)
        mentioned = extract_ips(ticket["subject"] + " " + ticket["description"])
        for ip in links.asset_ips:
            assert ip in mentioned
            assert any(ipaddress.ip_address(ip) in net for net in nets), ip


def test_most_open_tickets_link_a_kb_article(dataset: DemoDataset) -> None:
    with_kb = sum(1 for links in dataset.expected_links.values() if links.kb_files)
    assert with_kb >= 0.9 * len(dataset.open_tickets)


def test_every_ip_in_descriptions_parses_and_many_are_in_inventory(dataset: DemoDataset) -> None:
    nets = networks(dataset)
    tickets = dataset.resolved_tickets + dataset.open_tickets
    in_inventory = 0
    for ticket in tickets:
        text = (
            ticket["subject"]
            + " "
            + ticket["description"]
            + " "
            + ticket.get("resolution", {}).get("content", "")
        )
        for token in DOTTED.findall(text):
            ipaddress.ip_address(token)
        ips = extract_ips(text)
        if any(ipaddress.ip_address(ip) in net for ip in ips for net in nets):
            in_inventory += 1
    assert in_inventory >= 0.5 * len(tickets)


def test_some_tickets_mention_ipv6(dataset: DemoDataset) -> None:
    texts = [t["description"] for t in dataset.resolved_tickets + dataset.open_tickets]
    assert any(":" in ip for text in texts for ip in extract_ips(text))


def test_asset_csv_rows_are_valid(dataset: DemoDataset) -> None:
    with dataset.assets_csv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["address", "hostname", "role", "owner", "location"]
        rows = list(reader)
    addresses = [row["address"] for row in rows]
    assert len(addresses) == len(set(addresses))
    versions = set()
    for row in rows:
        assert row["hostname"] and row["role"] and row["owner"] and row["location"]
        if "/" in row["address"]:
            network = ipaddress.ip_network(row["address"], strict=True)
            versions.add(network.version)
        else:
            versions.add(ipaddress.ip_address(row["address"]).version)
    assert versions == {4, 6}


def test_tenants_overlap_in_address_space_but_not_in_meaning() -> None:
    acme = {r.address: r.hostname for r in load_demo_dataset("acme", now=NOW).assets()}
    globex = {r.address: r.hostname for r in load_demo_dataset("globex", now=NOW).assets()}
    shared = set(acme) & set(globex)
    assert len(shared) >= 3
    assert all(acme[a] != globex[a] for a in shared)
    ten = ipaddress.ip_network("10.0.0.0/8")
    for inventory in (acme, globex):
        assert any(
            ipaddress.ip_network(a, strict=False).subnet_of(ten) for a in inventory if ":" not in a
        )


def test_categories_are_spread(dataset: DemoDataset) -> None:
    counts = Counter(t["category"]["name"] for t in dataset.resolved_tickets)
    assert len(counts) >= 12
    assert min(counts.values()) >= 5
    assert max(counts.values()) <= 0.2 * len(dataset.resolved_tickets)
    assert len({t["category"]["name"] for t in dataset.open_tickets}) >= 10


def test_kb_articles_are_real_markdown(dataset: DemoDataset) -> None:
    for path in dataset.kb_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# ") and len(lines[0]) > 10, path.name
        assert len(lines) >= 15, path.name
        assert any(re.match(r"\d+\. ", line) for line in lines), path.name


def test_kb_articles_name_only_their_own_tenants_hosts() -> None:
    acme_hosts = {r.hostname for r in load_demo_dataset("acme", now=NOW).assets()}
    globex_hosts = {r.hostname for r in load_demo_dataset("globex", now=NOW).assets()}
    foreign_hosts = {"acme": globex_hosts - acme_hosts, "globex": acme_hosts - globex_hosts}
    for tenant, foreign in foreign_hosts.items():
        for path in load_demo_dataset(tenant, now=NOW).kb_files():
            text = path.read_text(encoding="utf-8")
            assert not [h for h in foreign if h in text], (tenant, path.name)


def test_every_scenario_has_history_and_is_used() -> None:
    data = load_demo_dataset("acme", now=NOW)
    used = {links.scenario for links in data.expected_links.values()}
    assert used == {s.key for s in SCENARIOS}


def test_data_files_live_inside_the_package() -> None:
    files = [p for p in DATA_DIR.rglob("*") if p.is_file() and p.suffix in {".md", ".csv"}]
    assert len(files) == sum(len(load_demo_dataset(t, now=NOW).kb_files()) + 1 for t in TENANTS)


def test_seeds_the_servicedesk_simulator_idempotently() -> None:
    store = pytest.importorskip("simulators.servicedesk.store")
    state = store.SimulatorState(seed=1)
    state.add_portal("acme", "preexisting-key", "cloud")
    seed_servicedesk(state, now=NOW)
    seed_servicedesk(state, now=NOW)
    for tenant in TENANTS:
        data = load_demo_dataset(tenant, now=NOW)
        requests = state.portal(tenant).requests
        assert len(requests) == len(data.resolved_tickets) + len(data.open_tickets)
        sample = data.open_tickets[0]
        stored = state.get_request(tenant, sample["id"])
        assert stored["subject"] == sample["subject"]
        assert stored["status"]["name"] == "Open"
    assert state.portal("acme").api_key == "preexisting-key"
    assert state.portal("globex").edition == "cloud"

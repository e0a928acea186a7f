"""The importers against real PostgreSQL (RLS, service role) and the SDP simulator over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.pool import tenant_transaction
from db.repositories.tenants import UnknownTenant
from pipeline.batch.importers import (
    ImportInterrupted,
    InventoryFormatError,
    SdpCallStats,
    doc_id_for,
    html_to_text,
    import_assets_csv,
    import_client,
    import_kb_directory,
    import_resolved_tickets,
    parse_inventory,
)
from pipeline.retrieval.history import ResolvedTicket
from pipeline.sdp.client import SdpClient
from pipeline.tenancy.runtime import load_tenant_runtime
from simulators.servicedesk import SimulatorState, start_in_thread
from simulators.serving import ServerHandle

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def sdp() -> Iterator[tuple[ServerHandle, SimulatorState]]:
    handle, state = start_in_thread(SimulatorState(seed=11))
    yield handle, state
    handle.stop()


async def sdp_tenant(make_tenant, sdp, prefix: str) -> tuple[str, str]:
    """A tenant whose SDP is a fresh simulator portal; returns (tenant id, portal name)."""
    handle, state = sdp
    key = "key-" + uuid.uuid4().hex
    creds = await make_tenant(prefix, sdp_url=handle.url, sdp_key=key)
    state.add_portal(creds.tenant_id, key, "onprem")
    return creds.tenant_id, creds.tenant_id


def resolved(n: int, days_ago: float, **extra: object) -> dict[str, object]:
    when = NOW - timedelta(days=days_ago)
    return {
        "subject": f"VPN drops #{n}",
        "status": "Resolved",
        "description": f"<div>Hi,<br>VPN to <b>10.1.{n % 250}.1</b> drops &amp; "
        f"reconnects<script>track()</script></div>",
        "resolution": f"<p>Re-issued the certificate ({n}).</p>",
        "priority": "High",
        "category": "Network",
        "subcategory": "VPN",
        "created_time": when - timedelta(hours=3),
        "resolved_time": when,
        **extra,
    }


async def client_for(pool, cipher, tenant_id: str, stats: SdpCallStats | None = None):
    runtime = await load_tenant_runtime(pool, cipher, tenant_id)
    assert runtime is not None
    return import_client(runtime, calls_per_minute=6000, on_call=stats)


async def test_ticket_import_pages_filters_and_is_idempotent(pool, cipher, make_tenant, sdp):
    tenant_id, portal = await sdp_tenant(make_tenant, sdp, "imp")
    state = sdp[1]
    state.add_requests(portal, [resolved(i, days_ago=1 + i * 0.3) for i in range(230)])
    state.add_requests(portal, [{"subject": f"open {i}", "status": "Open"} for i in range(7)])
    state.add_request(portal, resolved(900, days_ago=200))  # outside the 90-day window
    state.add_request(portal, resolved(901, days_ago=2, status="Canceled"))
    closed = state.add_request(portal, resolved(902, days_ago=3, status="Closed"))
    bare = state.add_request(portal, resolved(903, days_ago=4, resolution=None, description=""))
    stats = SdpCallStats()
    seen: list[tuple[int, int | None]] = []
    async with await client_for(pool, cipher, tenant_id, stats) as client:
        first = await import_resolved_tickets(
            pool, tenant_id, client, days=90, stats=stats, progress=lambda d, t: seen.append((d, t))
        )
        again = await import_resolved_tickets(pool, tenant_id, client, days=90)

    assert (first.seen, first.new, first.updated) == (232, 231, 0)
    assert [(s.item, s.reason) for s in first.skipped] == [(f"#{bare['id']}", "no resolution")]
    assert seen[-1] == (232, None)
    list_calls = state.calls(portal, "GET", path_contains="/requests")
    assert sum(c.path.endswith("/requests") for c in list_calls) >= 3  # > 100 rows: paged
    assert [c.path for c in list_calls if c.path.endswith(bare["id"])]  # detail fetched
    assert first.details["sdp_throttled"] == 0 and first.details["sdp_calls"] >= 4
    assert (again.seen, again.new, again.updated) == (232, 0, 231)

    async with tenant_transaction(pool, tenant_id) as conn:
        count = await conn.fetchval("SELECT count(*) FROM ticket_history")
        row = await conn.fetchrow("SELECT * FROM ticket_history WHERE ticket_id = $1", closed["id"])
    assert count == 231
    assert row["subject"] == "VPN drops #902"
    assert row["description"] == "Hi,\nVPN to 10.1.152.1 drops & reconnects"
    assert row["resolution"] == "Re-issued the certificate (902)."
    assert row["priority"] == "High" and row["tags"] == ["Network", "VPN"]
    assert abs(row["resolved_at"] - (NOW - timedelta(days=3))) < timedelta(seconds=1)


async def test_ticket_import_limit_takes_newest_first(pool, cipher, make_tenant, sdp):
    tenant_id, portal = await sdp_tenant(make_tenant, sdp, "imp")
    sdp[1].add_requests(portal, [resolved(i, days_ago=10 - i) for i in range(5)])
    async with await client_for(pool, cipher, tenant_id) as client:
        result = await import_resolved_tickets(pool, tenant_id, client, limit=2)
    assert (result.seen, result.new) == (2, 2)
    async with tenant_transaction(pool, tenant_id) as conn:
        subjects = {r["subject"] for r in await conn.fetch("SELECT subject FROM ticket_history")}
    assert subjects == {"VPN drops #4", "VPN drops #3"}


async def test_ticket_import_rides_out_429_with_retry_after(pool, cipher, make_tenant, sdp):
    tenant_id, portal = await sdp_tenant(make_tenant, sdp, "imp")
    state = sdp[1]
    state.add_requests(portal, [resolved(i, days_ago=5) for i in range(3)])
    state.set_faults(portal, http_429_next=1, retry_after_s=1)
    stats = SdpCallStats()
    started = time.monotonic()
    async with await client_for(pool, cipher, tenant_id, stats) as client:
        result = await import_resolved_tickets(pool, tenant_id, client, stats=stats)
    assert time.monotonic() - started >= 1.0
    assert (result.new, result.details["sdp_throttled"]) == (3, 1)
    assert [c.status for c in state.calls(portal)][:2] == [429, 200]


async def test_ticket_import_interrupted_keeps_what_was_saved(pool, cipher, make_tenant, sdp):
    tenant_id, portal = await sdp_tenant(make_tenant, sdp, "imp")
    state = sdp[1]
    state.add_requests(portal, [resolved(i, days_ago=5 + i * 0.01) for i in range(150)])
    runtime = await load_tenant_runtime(pool, cipher, tenant_id)
    assert runtime is not None

    def outage_after_first_page(done: int, total: int | None) -> None:
        if done == 100:
            state.set_faults(portal, outage="503")

    try:
        async with SdpClient(
            runtime.sdp_base_url,
            runtime.sdp_api_key,
            "onprem",
            max_attempts=2,
            backoff_initial_s=0.01,
        ) as client:
            with pytest.raises(ImportInterrupted) as caught:
                await import_resolved_tickets(
                    pool, tenant_id, client, progress=outage_after_first_page
                )
    finally:
        state.set_faults(portal)
    assert (caught.value.result.seen, caught.value.result.new) == (100, 100)
    assert "re-run to resume" in str(caught.value)
    async with tenant_transaction(pool, tenant_id) as conn:
        assert await conn.fetchval("SELECT count(*) FROM ticket_history") == 100


def test_ticket_record_maps_sdp_shapes() -> None:
    record = ResolvedTicket.from_sdp(
        {
            "id": 7,
            "subject": " Printer ",
            "description": "<p>Jam &lt;tray 2&gt;</p>",
            "priority": {"name": "Low"},
            "category": {"name": "Hardware"},
            "item": None,
            "tags": [{"name": "hardware"}, "floor-3"],
            "resolution": {"content": "<b>Cleared</b>"},
            "completed_time": {"value": "1700000000000"},
        }
    )
    assert record.ticket_id == "7" and record.subject == "Printer"
    assert record.description == "Jam <tray 2>" and record.resolution == "Cleared"
    assert record.tags == ["Hardware", "floor-3"]
    assert record.resolved_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert html_to_text("<style>p{}</style><p>a</p><p>b</p>") == "a\n\nb"


def write(root: Path, name: str, text: str | bytes) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


async def test_kb_import_formats_skips_and_idempotence(pool, make_tenant, tmp_path):
    tenant_id = (await make_tenant("kb")).tenant_id
    write(
        tmp_path,
        "Network/VPN Setup.md",
        "Intro line\n\n```bash\n# not a title\n```\n# VPN setup guide\n\nRe-issue the cert.\n",
    )
    write(
        tmp_path,
        "network/printers.html",
        "<html><head><title>Printer jams</title><script>x()</script></head>"
        "<body><h1>Other</h1><p>Open tray 2 &amp; clear.</p></body></html>",
    )
    write(tmp_path, "faq.htm", "<h1>Wi-Fi FAQ</h1><p>Forget the network.</p>")
    write(tmp_path, "notes/backup.txt", "\nBackup rotation\nTapes go offsite Fridays.\n")
    write(tmp_path, "front.md", "---\ntitle: 'Password policy'\n---\nRotate every 90 days.\n")
    write(tmp_path, "empty.md", "")
    write(tmp_path, "blank.txt", "  \n\n")
    write(tmp_path, "scan.pdf", b"%PDF-1.4")
    write(tmp_path, "latin.txt", b"caf\xe9")
    write(tmp_path, "network/vpn setup.txt", "A second 'vpn setup' article")
    write(tmp_path, ".git/config", "[core]")

    first = await import_kb_directory(pool, tenant_id, tmp_path, base_url="https://kb.example/")
    skipped = {s.item: s.reason for s in first.skipped}
    assert skipped == {
        "blank.txt": "empty",
        "empty.md": "empty",
        "latin.txt": "not UTF-8 text",
        "scan.pdf": "unsupported file type",
        "network/vpn setup.txt": "duplicate doc_id",
    }
    assert (first.seen, first.new, first.updated) == (10, 5, 0)

    async with tenant_transaction(pool, tenant_id) as conn:
        docs = {r["doc_id"]: r for r in await conn.fetch("SELECT * FROM kb_documents")}
    assert {d: docs[d]["title"] for d in docs} == {
        "network/vpn-setup": "VPN setup guide",
        "network/printers": "Printer jams",
        "faq": "Wi-Fi FAQ",
        "notes/backup": "Backup rotation",
        "front": "Password policy",
    }
    printers = docs["network/printers"]
    assert "x()" not in printers["body"] and "Open tray 2 & clear." in printers["body"]
    assert printers["url"] == "https://kb.example/network/printers.html"
    assert printers["source_path"] == "network/printers.html"

    again = await import_kb_directory(pool, tenant_id, tmp_path)
    assert (again.new, again.updated, len(again.skipped)) == (0, 5, 5)
    assert doc_id_for(Path("A B/C_d.e.md")) == "a-b/c-d-e"


INVENTORY = """\
IP , Hostname,role,owner,location
10.0.0.5,web01,Web server,Ops,DC1
10.0.0.0/24,,Server VLAN,Ops,DC1

999.1.1.1,bad1,,,
10.0.0.0/33,bad2,,,
,nameless,,,
2001:db8::1,v6host,,,
10.9.0.7/16,lab,,,
::ffff:192.0.2.9,mapped,,,
10.0.0.5,web01-renamed,Web server,Ops,DC2
"""


async def test_assets_import_reports_bad_lines_and_is_idempotent(pool, make_tenant, tmp_path):
    tenant_id = (await make_tenant("as")).tenant_id
    csv_path = tmp_path / "inventory.csv"
    csv_path.write_text(INVENTORY)
    first = await import_assets_csv(pool, tenant_id, csv_path)
    assert [(s.item, s.reason) for s in first.skipped] == [
        ("line 5", "invalid address"),
        ("line 6", "invalid address"),
        ("line 7", "missing address"),
        ("line 2", "superseded"),
    ]
    assert "999" in (first.skipped[0].detail or "") and "33" in (first.skipped[1].detail or "")
    assert (first.seen, first.new, first.updated, first.details["rejected"]) == (9, 5, 0, 3)

    async with tenant_transaction(pool, tenant_id) as conn:
        rows = {
            r["network"]: r["hostname"]
            for r in await conn.fetch("SELECT network::text AS network, hostname FROM assets")
        }
    assert rows == {
        "10.0.0.5/32": "web01-renamed",
        "10.0.0.0/24": None,
        "2001:db8::1/128": "v6host",
        "10.9.0.0/16": "lab",
        "192.0.2.9/32": "mapped",
    }

    again = await import_assets_csv(pool, tenant_id, csv_path)
    assert (again.new, again.updated) == (0, 5)


async def test_assets_strict_writes_nothing_and_bad_files_fail(pool, make_tenant, tmp_path):
    tenant_id = (await make_tenant("as")).tenant_id
    csv_path = tmp_path / "inventory.csv"
    csv_path.write_text("network,hostname\n10.1.0.0/16,a\n10.2.0.0/33,b\n")
    result = await import_assets_csv(pool, tenant_id, csv_path, strict=True)
    assert (result.imported, result.details["written"], result.details["rejected"]) == (0, False, 1)
    async with tenant_transaction(pool, tenant_id) as conn:
        assert await conn.fetchval("SELECT count(*) FROM assets") == 0
    with pytest.raises(InventoryFormatError, match="no address column"):
        parse_inventory("host,role\na,b\n")
    with pytest.raises(InventoryFormatError, match="empty file"):
        parse_inventory("")


async def test_imports_are_tenant_isolated(pool, make_tenant, tmp_path):
    a = (await make_tenant("iso")).tenant_id
    b = (await make_tenant("iso")).tenant_id
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "doc.md").write_text("# Secret runbook\nA's only.")
    (tmp_path / "a.csv").write_text("address,hostname\n10.50.0.1,a-only\n")
    await import_kb_directory(pool, a, tmp_path / "kb")
    await import_assets_csv(pool, a, tmp_path / "a.csv")
    for tenant, expected in ((a, 1), (b, 0)):
        async with tenant_transaction(pool, tenant) as conn:
            assert await conn.fetchval("SELECT count(*) FROM kb_documents") == expected
            assert await conn.fetchval("SELECT count(*) FROM assets") == expected
    # Same doc id and network for B are B's own rows, not an update of A's.
    (tmp_path / "b.csv").write_text("address,hostname\n10.50.0.1,b-only\n")
    assert (await import_assets_csv(pool, b, tmp_path / "b.csv")).new == 1
    assert (await import_kb_directory(pool, b, tmp_path / "kb")).new == 1


async def test_unknown_tenant_and_missing_paths(pool, tmp_path):
    with pytest.raises(UnknownTenant, match="unknown tenant 'no-such'"):
        await import_kb_directory(pool, "no-such", tmp_path)
    (tmp_path / "x.csv").write_text("address\n10.0.0.1\n")
    with pytest.raises(UnknownTenant):
        await import_assets_csv(pool, "no-such", tmp_path / "x.csv")
    with pytest.raises(ValueError, match="not a directory"):
        await import_kb_directory(pool, "no-such", tmp_path / "missing")


async def test_demo_dataset_imports_cleanly(pool, cipher, make_tenant, sdp):
    """The shipped demo data (tickets, KB, inventory) must load with nothing skipped."""
    demo = pytest.importorskip("simulators.demo_data")
    data = demo.load_demo_dataset("acme")
    tenant_id, portal = await sdp_tenant(make_tenant, sdp, "demo")
    sdp[1].add_requests(portal, data.resolved_tickets)
    async with await client_for(pool, cipher, tenant_id) as client:
        tickets = await import_resolved_tickets(pool, tenant_id, client, days=3650)
    kb = await import_kb_directory(pool, tenant_id, data.kb_dir)
    assets = await import_assets_csv(pool, tenant_id, data.assets_csv)
    assert tickets.new == len(data.resolved_tickets) and not tickets.skipped
    assert kb.new >= 1 and not kb.skipped
    assert assets.new >= 1 and not assets.skipped


@pytest.mark.parametrize(
    "header",
    [
        "ip_address",
        "IP Address",
        "ip",
        "Address",
        "CIDR",
        "network",
        "Subnet",
        "\ufeffIP_ADDRESS",
        "ip-address",
    ],
)
def test_asset_import_accepts_cmdb_header_spellings(header: str) -> None:
    rows, skipped = parse_inventory(f"{header},Host Name,ROLE\n10.0.0.5,web01,web\n")
    assert skipped == []
    assert [(r.network, r.hostname, r.role) for r in rows] == [("10.0.0.5/32", "web01", "web")]


def test_asset_import_without_any_address_spelling_names_them_all() -> None:
    with pytest.raises(InventoryFormatError) as caught:
        parse_inventory("host,ip_addr_x\na,b\n")
    assert str(caught.value) == (
        "no address column: expected one of ip_address, ip, address, "
        "cidr, network, subnet (found host, ip_addr_x)"
    )

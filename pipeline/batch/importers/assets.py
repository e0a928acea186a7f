"""Import an asset inventory CSV into `assets` (the IP cross-reference's source).

Inventories come from spreadsheets and CMDB exports, so a file is rarely clean. A bad row
is reported with its line number and reason while the good rows still load — unless the
caller asks for `strict`, in which case nothing is written, so the table never holds half of
a file the operator meant to be all-or-nothing. Every address is validated by `ipaddress`
before it reaches PostgreSQL's `cidr` (a host becomes /32 or /128), because a single row that
`cidr` rejects would otherwise abort the whole transaction.
"""

from __future__ import annotations

import asyncio
import csv
import io
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from db.repositories.knowledge import upsert_asset

from .outcome import ImportResult, ProgressCallback, Skipped
from .storage import require_tenant, write_batch

# Header spellings CMDB exports use; compared ignoring case, spaces, underscores and hyphens
# ("IP Address", "ip_address", "IP-Address" are one column). The first one present is used.
ADDRESS_COLUMNS = ("ip_address", "ip", "address", "cidr", "network", "subnet")
TEXT_COLUMNS = ("hostname", "role", "owner", "location")


class InventoryFormatError(ValueError):
    """The file as a whole is unusable (no header, no address column)."""


@dataclass(frozen=True)
class AssetRow:
    line: int
    network: str
    hostname: str | None
    role: str | None
    owner: str | None
    location: str | None


def parse_network(text: str) -> str:
    """Canonical network text for `cidr`, or ValueError with `ipaddress`'s precise reason.

    IPv4-mapped IPv6 is stored as the IPv4 network it maps, because ticket IPs are matched
    as IPv4 (see `pipeline.text.ticket_text`) and would otherwise never hit the entry.
    """
    if "%" in text:
        raise ValueError(f"zone ids are not allowed in {text!r}")
    family = ipaddress.IPv6Network if ":" in text else ipaddress.IPv4Network
    network: ipaddress.IPv4Network | ipaddress.IPv6Network = family(text, strict=False)
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network.with_prefixlen


def _column_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.replace("\ufeff", "").lower())


def _header(fields: list[str]) -> tuple[dict[str, int], str]:
    columns: dict[str, int] = {}
    for i, name in enumerate(fields):
        columns.setdefault(_column_key(name), i)
    address = next((_column_key(n) for n in ADDRESS_COLUMNS if _column_key(n) in columns), None)
    if address is None:
        found = ", ".join(f for f in fields if f.strip()) or "none"
        raise InventoryFormatError(
            f"no address column: expected one of {', '.join(ADDRESS_COLUMNS)} (found {found})"
        )
    return columns, address


def parse_inventory(text: str) -> tuple[list[AssetRow], list[Skipped]]:
    """Rows that can be imported, and the rejected ones by line (blank lines are ignored).

    When a network appears twice the later line wins, as it would in a spreadsheet edit; the
    earlier one is reported so the operator sees the file disagrees with itself.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InventoryFormatError("empty file: expected a header line") from None
    except csv.Error as err:
        raise InventoryFormatError(f"line 1: {err}") from None
    columns, address_column = _header(header)
    rows: dict[str, AssetRow] = {}
    skipped: list[Skipped] = []
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            skipped.append(Skipped(f"line {start}", "unreadable CSV", str(err)))
            continue
        if not any(f.strip() for f in fields):
            continue

        def cell(name: str, fields: list[str] = fields) -> str | None:
            index = columns.get(_column_key(name))
            value = fields[index].strip() if index is not None and index < len(fields) else ""
            return value or None

        address = cell(address_column)
        if address is None:
            skipped.append(Skipped(f"line {start}", "missing address"))
            continue
        try:
            network = parse_network(address)
        except ValueError as err:
            skipped.append(Skipped(f"line {start}", "invalid address", str(err)))
            continue
        earlier = rows.pop(network, None)
        if earlier is not None:
            skipped.append(
                Skipped(
                    f"line {earlier.line}", "superseded", f"{network} is repeated on line {start}"
                )
            )
        rows[network] = AssetRow(start, network, *(cell(name) for name in TEXT_COLUMNS))
    return sorted(rows.values(), key=lambda row: row.line), skipped


def read_inventory(csv_path: Path | str) -> tuple[Path, str]:
    """The file's text; a UTF-8 BOM (Excel's "CSV UTF-8") is dropped."""
    path = Path(csv_path).expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {csv_path}")
    try:
        return path, path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InventoryFormatError(f"{path.name} is not UTF-8 text (byte {err.start})") from None


async def _upsert(conn: asyncpg.Connection, row: AssetRow, tenant_id: str) -> bool:
    return await upsert_asset(
        conn,
        tenant_id=tenant_id,
        network=row.network,
        hostname=row.hostname,
        role=row.role,
        owner=row.owner,
        location=row.location,
    )


async def import_assets_csv(
    pool: asyncpg.Pool,
    tenant_id: str,
    csv_path: Path | str,
    *,
    strict: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Upsert the inventory's valid rows in one transaction (a file loads whole or not at all).

    With `strict`, any rejected row means nothing is written (`details["written"]` False).
    """
    path, text = await asyncio.to_thread(read_inventory, csv_path)
    await require_tenant(pool, tenant_id)
    rows, skipped = parse_inventory(text)
    result = ImportResult(
        "assets",
        tenant_id,
        seen=len(rows) + len(skipped),
        skipped=skipped,
        details={"file": str(path), "strict": strict, "written": False},
    )
    rejected = sum(s.reason != "superseded" for s in skipped)
    result.details["rejected"] = rejected
    if strict and rejected:
        return result
    result.new, result.updated = await write_batch(
        pool, tenant_id, rows, lambda conn, row: _upsert(conn, row, tenant_id)
    )
    result.details["written"] = bool(rows)
    if progress is not None:
        progress(result.seen, result.seen)
    return result

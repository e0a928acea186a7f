"""`ai-agents import {tickets,kb,assets}`: bulk-load a tenant's history, KB and inventory.

Thin shells over `pipeline.batch.importers` (the same functions a Ray Job can call). What lives here
is only the operator's view: a progress bar and SDP throttling notices on stderr (silent with
`--json`, so stdout stays one JSON document), a readable report, and exit codes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import typer

from cli.support import (
    DataDirOption,
    JsonOption,
    emit_json,
    fail,
    load_runtime,
    one_line_errors,
    progress_bar,
    run_async,
    service_pool,
)
from core.settings import Settings
from db.repositories.tenants import UnknownTenant
from pipeline.batch.importers import (
    DEFAULT_STATUSES,
    ImportInterrupted,
    ImportResult,
    SdpCallStats,
    import_assets_csv,
    import_client,
    import_kb_directory,
    import_resolved_tickets,
)
from pipeline.retrieval.embedder import service_embedder
from pipeline.sdp.wire import SdpRateLimited
from pipeline.tenancy.credential_cipher import CredentialCipher
from pipeline.tenancy.runtime import load_tenant_runtime

import_app = typer.Typer(
    help="Bulk-load a tenant's resolved tickets, KB articles and asset inventory.",
    no_args_is_help=True,
)
TenantOption = typer.Option(None, "--tenant", "-t", help="Tenant id (see `ai-agents tenant list`)")
SHOWN_PER_REASON = 10


class _Display:
    """A progress bar on stderr, or nothing at all under `--json`."""

    def __init__(self, label: str, *, enabled: bool) -> None:
        self._label = label
        self._progress = progress_bar(spinner=True) if enabled else None
        self._task: Any = None

    def __enter__(self) -> _Display:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)

    def note(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)


class _SdpRetryNotices(logging.Handler):
    """Turns the SDP client's retry warnings into notices, so a long Retry-After wait reads
    as throttling rather than a hang (and never reaches stderr as a raw log line)."""

    def __init__(self, display: _Display) -> None:
        super().__init__(logging.WARNING)
        self._display = display

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        error, wait = (args[2], args[4]) if len(args) == 5 else (None, None)
        if isinstance(error, SdpRateLimited) and isinstance(wait, int | float):
            self._display.note(
                f"SDP rate limit (HTTP 429): waiting {wait:.1f}s as SDP asked, then retrying"
            )
        else:
            self._display.note(f"SDP: {record.getMessage()}")


@contextmanager
def _sdp_notices(display: _Display) -> Iterator[None]:
    logger = logging.getLogger("pipeline.sdp.client")
    handler = _SdpRetryNotices(display)
    previous = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = previous


def _required_tenant(tenant: str | None) -> str:
    if not tenant:
        fail("--tenant is required")
    assert tenant is not None
    return tenant


async def _with_pool(
    data_dir: str | None, action: Callable[[asyncpg.Pool, str], Awaitable[ImportResult]]
) -> ImportResult:
    runtime = await load_runtime(data_dir)
    async with service_pool(runtime) as pool:
        return await action(pool, runtime.encryption_keys)


def _report(result: ImportResult, heading: str, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
        return
    seen = result.to_dict()
    label = next(k for k in ("fetched", "files", "rows") if k in seen)
    typer.echo(heading)
    typer.echo(
        f"  {label} {result.seen}, new {result.new}, updated {result.updated}, "
        f"skipped {len(result.skipped)}"
    )
    if "embedded" in result.details:
        typer.echo(
            f"  embedded {result.details['embedded']} for vector search "
            f"({result.details['embedding_model']})"
        )
    if "embedding_error" in result.details:
        typer.echo(f"  embedding stopped: {result.details['embedding_error']}")
    for reason, count in result.skipped_by_reason().items():
        items = [s for s in result.skipped if s.reason == reason]
        typer.echo(f"  skipped ({reason}): {count}")
        for item in items[:SHOWN_PER_REASON]:
            typer.echo(f"    {item.item}" + (f": {item.detail}" if item.detail else ""))
        if count > SHOWN_PER_REASON:
            typer.echo(f"    … and {count - SHOWN_PER_REASON} more (use --json for all)")


@import_app.command("tickets")
@one_line_errors
def tickets(
    tenant: str | None = TenantOption,
    days: int = typer.Option(90, "--days", help="Import tickets resolved in the last N days"),
    status: str = typer.Option(
        ",".join(DEFAULT_STATUSES), "--status", help="Comma-separated SDP status names"
    ),
    limit: int | None = typer.Option(None, "--limit", help="Stop after N tickets (newest first)"),
    sdp_rate: int | None = typer.Option(
        None,
        "--sdp-rate",
        help="SDP calls per minute (default: half the tenant's SDP rate, "
        "leaving room for live note write-backs)",
    ),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Import resolved tickets from the tenant's ServiceDesk Plus into the ticket history.

    Idempotent: a re-run refreshes the same rows. Honours SDP's 429/Retry-After.

    Example: ai-agents import tickets --tenant acme --days 90 --status Resolved,Closed
    """
    tenant_id = _required_tenant(tenant)
    if days < 1:
        fail("--days must be at least 1")
    if limit is not None and limit < 1:
        fail("--limit must be at least 1")
    statuses = [s.strip() for s in status.split(",") if s.strip()]
    display = _Display("tickets", enabled=not as_json)

    async def action(pool: asyncpg.Pool, keys: str) -> ImportResult:
        runtime = await load_tenant_runtime(pool, CredentialCipher.from_csv(keys), tenant_id)
        if runtime is None:
            raise UnknownTenant(tenant_id)
        stats = SdpCallStats()
        async with import_client(
            runtime, calls_per_minute=sdp_rate, on_call=stats, url_policy=Settings().sdp_url_policy
        ) as client:
            try:
                return await import_resolved_tickets(
                    pool,
                    tenant_id,
                    client,
                    days=days,
                    statuses=statuses,
                    limit=limit,
                    progress=display.update,
                    stats=stats,
                    embedder=service_embedder(),
                )
            except ImportInterrupted as exc:
                if as_json:
                    emit_json({**exc.result.to_dict(), "error": str(exc)})
                raise

    with display, _sdp_notices(display):
        result = run_async(_with_pool(data_dir, action))
    throttled = result.details.get("sdp_throttled", 0)
    _report(
        result,
        f"Imported resolved tickets for {tenant_id} "
        f"(resolved since {result.details['since'][:10]}, status "
        f"{', '.join(statuses) or 'any'}; SDP calls {result.details['sdp_calls']}"
        + (f", throttled {throttled}" if throttled else "")
        + ")",
        as_json,
    )


@import_app.command("kb")
@one_line_errors
def kb(
    directory: Path = typer.Argument(..., help="Folder of .md, .html/.htm and .txt articles"),
    tenant: str | None = TenantOption,
    base_url: str | None = typer.Option(
        None, "--base-url", help="Where the articles are published (URL = base + path)"
    ),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Import a folder of KB articles (recursively). Idempotent: ids are relative-path slugs.

    Example: ai-agents import kb --tenant acme ./kb/acme
    """
    tenant_id = _required_tenant(tenant)
    display = _Display("kb files", enabled=not as_json)

    async def action(pool: asyncpg.Pool, keys: str) -> ImportResult:
        return await import_kb_directory(
            pool,
            tenant_id,
            directory,
            base_url=base_url,
            progress=display.update,
            embedder=service_embedder(),
        )

    with display:
        result = run_async(_with_pool(data_dir, action))
    _report(result, f"Imported KB articles for {tenant_id} from {directory}", as_json)


@import_app.command("assets")
@one_line_errors
def assets(
    csv_file: Path = typer.Argument(
        ..., metavar="FILE.csv", help="Header: address,hostname,role,owner,location"
    ),
    tenant: str | None = TenantOption,
    strict: bool = typer.Option(False, "--strict", help="Any bad row: import nothing and exit 1"),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Import an asset inventory CSV (address may be a host IP or a CIDR network).

    The address column may also be named ip, cidr or network. Bad rows are reported by line
    number and the rest are imported (exit 0), unless --strict.

    Example: ai-agents import assets --tenant acme inventory.csv
    """
    tenant_id = _required_tenant(tenant)

    async def action(pool: asyncpg.Pool, keys: str) -> ImportResult:
        return await import_assets_csv(pool, tenant_id, csv_file, strict=strict)

    result = run_async(_with_pool(data_dir, action))
    rejected = [s for s in result.skipped if s.reason != "superseded"]
    if as_json:
        emit_json(result.to_dict())
    else:
        written = "" if result.details["written"] or not result.seen else " (nothing written)"
        _report(result, f"Imported assets for {tenant_id} from {csv_file}{written}", as_json)
        for item in rejected:
            typer.echo(f"warning: {item.describe()}", err=True)
    if rejected and (strict or not result.imported):
        why = "--strict" if strict else "no valid rows"
        fail(f"{len(rejected)} bad row(s) in {csv_file} ({why}); first: {rejected[0].describe()}")

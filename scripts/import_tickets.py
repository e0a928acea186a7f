"""Ray Job entry point for the bulk import of a tenant's resolved SDP tickets.

    ray job submit -- python -m scripts.import_tickets --tenant acme --days 90

The same code as `ai-agents import tickets` (`pipeline.batch.importers`), run on the cluster: the
database URL and the encryption keys that unlock the tenant's SDP key come from the cluster's
own environment, never from the job's runtime_env. Progress is one line per 100 tickets (the
dashboard's Jobs view shows it); the last line is the result as JSON. Re-running resumes in
effect: the import is an upsert, so tickets already saved are just refreshed.

Exit codes: 0 done; 1 SDP gave up mid-way (what was saved stays saved); 2 bad input or set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from core.sdp_url_policy import SdpUrlPolicy
from db.pool import create_pool
from db.repositories.tenants import UnknownTenant
from pipeline.batch.importers import (
    DEFAULT_STATUSES,
    ImportInterrupted,
    ImportResult,
    SdpCallStats,
    import_client,
    import_resolved_tickets,
)
from pipeline.retrieval.embedder import service_embedder
from pipeline.tenancy.credential_cipher import CredentialCipher
from pipeline.tenancy.runtime import load_tenant_runtime

PREFIX = "import-tickets:"
PROGRESS_EVERY = 100


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.import_tickets",
        description="Import a tenant's resolved SDP tickets into the ticket history.",
        epilog="Example: ray job submit -- python -m scripts.import_tickets --tenant acme "
        "--days 90",
    )
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument(
        "--status", default=",".join(DEFAULT_STATUSES), help="Comma-separated SDP status names"
    )
    parser.add_argument("--limit", type=int)
    parser.add_argument(
        "--sdp-rate", type=int, help="SDP calls per minute (default: half the tenant's SDP rate)"
    )
    return parser


def _say(message: str) -> None:
    print(f"{PREFIX} {message}", flush=True)


def _progress(seen: int, limit: int | None) -> None:
    if seen % PROGRESS_EVERY == 0:
        _say(f"progress fetched={seen}" + (f" limit={limit}" if limit else ""))


def _result(result: ImportResult, **extra: Any) -> None:
    summary = {k: v for k, v in result.to_dict().items() if k != "skipped_items"}
    print(
        f"{PREFIX} result " + json.dumps({**summary, **extra}, sort_keys=True, default=str),
        flush=True,
    )


async def run(
    ns: argparse.Namespace,
    *,
    database_url: str,
    encryption_keys: str,
    url_policy: SdpUrlPolicy | None = None,
) -> int:
    statuses = [s.strip() for s in ns.status.split(",") if s.strip()]
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        tenant = await load_tenant_runtime(
            pool, CredentialCipher.from_csv(encryption_keys), ns.tenant
        )
        if tenant is None:
            raise UnknownTenant(ns.tenant)
        _say(
            f"importing tickets resolved in the last {ns.days} day(s) for {ns.tenant} "
            f"(status {', '.join(statuses) or 'any'})"
        )
        stats = SdpCallStats()
        async with import_client(
            tenant, calls_per_minute=ns.sdp_rate, on_call=stats, url_policy=url_policy
        ) as client:
            try:
                result = await import_resolved_tickets(
                    pool,
                    ns.tenant,
                    client,
                    days=ns.days,
                    statuses=statuses,
                    limit=ns.limit,
                    progress=_progress,
                    stats=stats,
                    embedder=service_embedder(),
                )
            except ImportInterrupted as exc:
                _say(f"error: {exc}")
                _result(exc.result, error=str(exc))
                return 1
    finally:
        await pool.close()
    _say(
        f"done: fetched {result.seen}, new {result.new}, updated {result.updated}, "
        f"skipped {len(result.skipped)}"
    )
    _result(result)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    from core.settings import Settings

    settings = Settings()
    if settings.database_url is None or settings.encryption_keys is None:
        print(
            f"{PREFIX} error: AI_AGENTS_DATABASE_URL and AI_AGENTS_ENCRYPTION_KEYS must be "
            "set in the cluster's environment",
            file=sys.stderr,
            flush=True,
        )
        return 2
    try:
        return asyncio.run(
            run(
                ns,
                database_url=settings.database_url.get_secret_value(),
                encryption_keys=settings.encryption_keys.get_secret_value(),
                url_policy=settings.sdp_url_policy,
            )
        )
    except (UnknownTenant, ValueError) as exc:
        print(f"{PREFIX} error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())

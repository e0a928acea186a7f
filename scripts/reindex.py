"""Ray Job entry point for re-embedding a tenant (`ai-agents reindex --ray` submits it).

    ray job submit -- python -m scripts.reindex --tenant acme

The same code as the local `ai-agents reindex` (`pipeline.batch.reindex_run`), run on the cluster:
the database URL and the embedding settings (`AI_AGENTS_DATABASE_URL`,
`AI_AGENTS_EMBEDDING_*`) come from the cluster's own environment, never from the job's
runtime_env. Progress is one line a second at most (the dashboard's Jobs view shows it); the
last line is the result as JSON. Re-running resumes: vectors already fresh are skipped.

Exit codes: 0 done; 2 bad input or set-up (unknown tenant, no database URL).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from collections.abc import Sequence

from db.repositories.tenants import UnknownTenant
from pipeline.batch.reindex_run import ERROR_PREFIX, run_reindex


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.reindex",
        description="Embed a tenant's tickets and KB articles whose vectors are missing or stale.",
        epilog="Example: ray job submit -- python -m scripts.reindex --tenant acme",
    )
    parser.add_argument("--tenant", required=True)
    return parser


def _print(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    from core.settings import Settings
    from pipeline.retrieval.embedder import service_embedder

    settings = Settings()
    if settings.database_url is None:
        print(
            f"{ERROR_PREFIX}AI_AGENTS_DATABASE_URL is not set in the cluster's environment",
            file=sys.stderr,
            flush=True,
        )
        return 2
    try:
        asyncio.run(
            run_reindex(
                settings.database_url.get_secret_value(),
                ns.tenant,
                service_embedder(),
                emit=_print,
            )
        )
    except UnknownTenant:
        print(f"{ERROR_PREFIX}unknown tenant {ns.tenant!r}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - one readable line for the CLI, then the detail
        detail = str(exc).splitlines()[0] if str(exc) else ""
        print(f"{ERROR_PREFIX}{type(exc).__name__}: {detail}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

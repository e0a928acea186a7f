"""The intake baseline: the same ``create_api`` FastAPI app under bare uvicorn (one process,
uvloop + httptools), configured from the same ``AI_AGENTS_*`` environment as the replicas.

``python -m benchmarks.intake.bare_server --port P`` — same routes, same signature check, same
tenant-directory cache, same INSERT + NOTIFY before the 202; only Ray Serve is missing (and the
Ray metrics sink is the in-memory one).
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from core.settings import get_settings
from pipeline.observability.logging_setup import configure_logging
from pipeline.observability.tracing import configure_tracing
from serve_app.ingress import Ingress


def build() -> FastAPI:
    """The app a replica builds (same settings, tracing and logging), so only Serve differs."""
    settings = get_settings()
    configure_tracing()
    configure_logging(settings.log_level)
    return Ingress(settings).app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()

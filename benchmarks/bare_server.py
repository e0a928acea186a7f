"""The intake baseline: the same ``create_api`` FastAPI app under bare uvicorn (one process,
uvloop + httptools), configured from the same ``AI_AGENTS_*`` environment as the replicas.

``python -m benchmarks.bare_server --port P`` — same routes, same signature check, same
tenant-directory cache, same INSERT + NOTIFY before the 202; only Ray Serve is missing (and the
Ray metrics sink is the in-memory one).
"""

from __future__ import annotations

import argparse

import uvicorn

from pipeline.core.settings import get_settings
from pipeline.logging_setup import configure_logging
from pipeline.tracing import configure_tracing
from serve_app.api import create_api
from serve_app.api_state import ApiState


def build(async_state: bool = False):  # type: ignore[no-untyped-def]
    settings = get_settings()
    configure_tracing()
    configure_logging(settings.log_level)
    app = create_api(ApiState.from_settings(settings))
    if async_state:
        from benchmarks.apps import with_async_state

        app = with_async_state(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--async-state",
        action="store_true",
        help="serve_app.deps.get_state as async def (see benchmarks.apps)",
    )
    args = parser.parse_args()
    uvicorn.run(
        build(args.async_state),
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

"""`python -m simulators.servicedesk --port 8081 [--seed-demo] [--portal NAME:KEY[:EDITION]]`."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from .app import create_app
from .seeding import seed_demo
from .store import SimulatorState


def _portal(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError("expected NAME:API_KEY[:onprem|cloud]")
    edition = parts[2] if len(parts) == 3 else "onprem"
    if edition not in ("onprem", "cloud"):
        raise argparse.ArgumentTypeError("edition must be onprem or cloud")
    return parts[0], parts[1], edition


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.servicedesk",
        description="ServiceDesk Plus v3 API simulator (control API under /_sim).",
        epilog="example: python -m simulators.servicedesk --port 8081 "
        "--portal acme:acme-key:cloud --seed-demo",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--seed-demo",
        action="store_true",
        help="load demo portals and tickets from simulators.demo_data",
    )
    parser.add_argument(
        "--portal",
        type=_portal,
        action="append",
        default=[],
        metavar="NAME:KEY[:EDITION]",
        help="create a portal (repeatable)",
    )
    parser.add_argument(
        "--random-seed",
        type=int,
        default=None,
        help="seed for random latency and probabilistic faults",
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    state = SimulatorState(seed=args.random_seed)
    try:
        for name, key, edition in args.portal:
            state.add_portal(name, key, edition)
        if args.seed_demo:
            seed_demo(state)
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(state),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

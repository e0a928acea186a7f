"""The `--seed-demo` hook: demo tenants and tickets live in `simulators.demo_data`.

That module is owned elsewhere; the contract is a function `seed_servicedesk(state)` that
calls `state.add_portal(...)` and `state.add_request(...)`. Importing it lazily keeps the
simulator usable (and testable) before or without the demo data.
"""

from __future__ import annotations

import importlib

from .store import SimulatorState

DEMO_MODULE = "simulators.demo_data"
DEMO_FUNCTION = "seed_servicedesk"


def seed_demo(state: SimulatorState) -> None:
    """Load the demo portals and requests into `state`, or fail with a one-line reason."""
    try:
        module = importlib.import_module(DEMO_MODULE)
    except ImportError as err:
        raise RuntimeError(f"demo data unavailable: cannot import {DEMO_MODULE} ({err})") from None
    seed = getattr(module, DEMO_FUNCTION, None)
    if not callable(seed):
        raise RuntimeError(f"demo data unavailable: {DEMO_MODULE}.{DEMO_FUNCTION} is missing")
    seed(state)

"""Fixtures shared by the workflow tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.servicedesk.app import create_app
from simulators.servicedesk.store import SimulatorState
from simulators.serving import run_in_thread


@pytest.fixture(scope="module")
def sdp() -> Iterator[tuple[SimulatorState, str]]:
    """The ServiceDesk Plus simulator over real HTTP, one per test module: (state, base URL)."""
    state = SimulatorState()
    with run_in_thread(create_app(state)) as server:
        yield state, server.url

"""Fixtures for the SDP simulator tests: one simulator per test module over real loopback HTTP,
reset and re-seeded before every test so tests in a module do not see each other's data."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulators.servicedesk import SimulatorState, start_in_thread
from simulators.serving import ServerHandle
from tests.simulators.servicedesk_world import CLOUD_KEY, ONPREM_KEY, VPN_TICKET


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerHandle, SimulatorState]]:
    handle, state = start_in_thread(SimulatorState(seed=7))
    yield handle, state
    handle.stop()


@pytest.fixture(scope="module")
def http(server: tuple[ServerHandle, SimulatorState]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0].url, timeout=5) as client:
        yield client


@pytest.fixture
def state(server: tuple[ServerHandle, SimulatorState]) -> SimulatorState:
    state = server[1]
    state.reset()
    state.add_portal("acme", CLOUD_KEY, "cloud")
    state.add_portal("globex", ONPREM_KEY, "onprem")
    state.add_request("acme", VPN_TICKET)
    state.add_request(
        "globex",
        subject="Printer offline",
        description="<p>10.1.1.9</p>",
        id="1001",
        status="Resolved",
        resolution="Replaced the fuser",
        created_time=1_700_000_000_000,
        resolved_time=1_700_000_360_000,
    )
    return state

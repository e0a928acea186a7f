"""Start the SDP simulator on a loopback thread: the one call tests and the demo need."""

from __future__ import annotations

from ..serving import ServerHandle, run_in_thread
from .app import create_app
from .store import SimulatorState


def start_in_thread(
    state: SimulatorState | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> tuple[ServerHandle, SimulatorState]:
    """Serve a simulator over real HTTP; returns the handle (`.url`, `.stop()`) and its state."""
    state = state if state is not None else SimulatorState()
    return run_in_thread(create_app(state), host, port), state

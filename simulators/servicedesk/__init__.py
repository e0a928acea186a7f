"""A faithful ServiceDesk Plus v3 API simulator (multi-portal, fault injection, webhooks).

In-process:  `state = SimulatorState(); state.add_portal("acme", "key", "cloud")`, then
`handle, _ = start_in_thread(state)` and point clients at `handle.url`.
Standalone:  `python -m simulators.servicedesk --port 8081`, driven via `SimulatorControl`.
"""

from .app import create_app
from .control_client import SimulatorControl
from .faults import FaultConfig
from .seeding import seed_demo
from .server import start_in_thread
from .store import CallRecord, NoteRecord, Portal, SimulatorState
from .webhook_sender import (
    build_payload,
    flat_payload,
    send_webhook,
    send_webhook_async,
    sign,
    v3_payload,
    webhook_headers,
)
from .wire.envelopes import SdpHttpError
from .wire.records import build_request, display_value, sdp_time

__all__ = [
    "CallRecord",
    "FaultConfig",
    "NoteRecord",
    "Portal",
    "SdpHttpError",
    "SimulatorControl",
    "SimulatorState",
    "build_payload",
    "build_request",
    "create_app",
    "display_value",
    "flat_payload",
    "sdp_time",
    "seed_demo",
    "send_webhook",
    "send_webhook_async",
    "sign",
    "start_in_thread",
    "v3_payload",
    "webhook_headers",
]

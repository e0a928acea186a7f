"""Both simulators (ServiceDesk Plus v3 API and an OpenAI-compatible LLM) served on loopback
threads of this process, so a run needs no external service and can inspect what the system
wrote (notes, calls) directly in their state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.tenant_types import Edition
from simulators.demo_data import seed_servicedesk
from simulators.llm.app import create_app as create_llm_app
from simulators.llm.state import LLMSimulatorState
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.serving import run_in_thread


class Simulators:
    """``sdp`` and ``llm`` are the simulators' states (seed data, faults, assertions),
    ``sdp_url`` and ``llm_url`` where they listen.

    ``seed`` fixes the SDP simulator's generated ids; ``demo_data`` loads the demo tenants'
    portals and tickets; ``llm_api_keys`` limits which bearer tokens the LLM simulator accepts
    (None: any); ``sdp_latency_ms`` is added to every SDP call of portals added here.
    """

    def __init__(
        self,
        *,
        seed: int = 11,
        demo_data: bool = False,
        llm_latency_s: float = 0.0,
        llm_jitter_pct: float = 0.0,
        llm_api_keys: Sequence[str] | None = None,
        sdp_latency_ms: float = 0.0,
    ) -> None:
        self.sdp_latency_ms = sdp_latency_ms
        self.sdp = SimulatorState(seed=seed)
        if demo_data:
            seed_servicedesk(self.sdp)
        self.llm = LLMSimulatorState(
            api_keys=llm_api_keys, latency_s=llm_latency_s, jitter_pct=llm_jitter_pct
        )
        self._sdp_server = run_in_thread(create_sdp_app(self.sdp))
        self._llm_server = run_in_thread(create_llm_app(self.llm))

    @property
    def sdp_url(self) -> str:
        return self._sdp_server.url

    @property
    def llm_url(self) -> str:
        return self._llm_server.url

    def add_portal(self, tenant_id: str, key: str, edition: Edition = "onprem") -> None:
        self.sdp.add_portal(tenant_id, key, edition)
        if self.sdp_latency_ms:
            self.sdp.update_faults(tenant_id, latency_ms=self.sdp_latency_ms)

    def notes_by_ticket(self, tenant_ids: Iterable[str]) -> dict[tuple[str, str], list[str]]:
        """(tenant, ticket) -> descriptions of the notes written on it."""
        out: dict[tuple[str, str], list[str]] = {}
        for tenant in tenant_ids:
            for note in self.sdp.recorded_notes(tenant):
                out.setdefault((tenant, note.request_id), []).append(note.description)
        return out

    def stop(self) -> None:
        self._sdp_server.stop()
        self._llm_server.stop()

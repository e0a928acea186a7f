"""The whole system for integration tests: embedded PostgreSQL, Ray Serve running the real app
graph, and both simulators on loopback. Started once per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import httpx

from local_stack.environment import service_environment
from local_stack.results import TERMINAL_STATUSES, poll_until
from simulators.llm.state import LLMSimulatorState
from simulators.servicedesk.store import SimulatorState
from simulators.servicedesk.webhook_sender import send_webhook_async, v3_payload

TEST_LLM_KEY = "sk-or-v1-test-llm-key"  # the only key the session's LLM simulator accepts


@dataclass
class TenantHandle:
    tenant_id: str
    webhook_secret: str
    api_token: str
    sdp_key: str
    mode: str
    system: System

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}

    def add_ticket(self, **fields: Any) -> dict[str, Any]:
        return self.system.sdp.add_request(self.tenant_id, **fields)

    async def send(self, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return await send_webhook_async(
            f"{self.system.url}/webhook/servicedesk/{self.tenant_id}",
            payload,
            self.mode,
            self.webhook_secret,
            client=self.system.http,
            **kwargs,
        )

    async def send_ticket(self, request: dict[str, Any]) -> str:
        response = await self.send(v3_payload(request))
        assert response.status_code == 202, response.text
        return response.json()["enhancement_id"]

    async def enhancement(self, enhancement_id: str) -> dict[str, Any]:
        response = await self.system.http.get(
            f"{self.system.url}/api/v1/enhancements/{enhancement_id}", headers=self.auth
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def wait(
        self,
        enhancement_id: str,
        timeout_s: float = 90.0,
        statuses: Collection[str] = TERMINAL_STATUSES,
    ) -> dict[str, Any]:
        row, finished = await poll_until(
            lambda: self.enhancement(enhancement_id),
            lambda row: row["status"] in statuses,
            timeout_s=timeout_s,
            interval_s=0.2,
        )
        if not finished:
            raise AssertionError(f"enhancement {enhancement_id} stuck: {row}")
        return row

    def notes(self, request_id: str | None = None) -> list[Any]:
        return self.system.sdp.recorded_notes(self.tenant_id, request_id)


@dataclass
class System:
    url: str
    admin_token: str
    sdp: SimulatorState
    sdp_url: str
    llm: LLMSimulatorState
    dashboard_url: str = ""  # Ray dashboard / Jobs API, e.g. http://127.0.0.1:PORT
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def tenant(
        self,
        prefix: str = "t",
        *,
        mode: str = "hmac",
        edition: str = "onprem",
        settings: dict[str, Any] | None = None,
    ) -> TenantHandle:
        tenant_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        sdp_key = f"sdp-{uuid.uuid4().hex}"
        self.sdp.add_portal(tenant_id, sdp_key, edition)  # type: ignore[arg-type]
        body: dict[str, Any] = {
            "id": tenant_id,
            "sdp_url": self.sdp_url,
            "sdp_key": sdp_key,
            "sdp_edition": edition,
            "webhook_auth": mode,
        }
        if edition == "cloud":
            body["sdp_portal"] = tenant_id
        if settings:
            body["settings"] = settings
        response = await self.http.post(f"{self.url}/admin/tenants", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        creds = response.json()
        return TenantHandle(
            tenant_id, creds["webhook_secret"], creds["api_token"], sdp_key, mode, self
        )


METRICS_TOKEN = "met_integration-test"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}  # what Prometheus sends /metrics


def test_environment(
    database_url: str, encryption_keys: str, admin_token: str, llm_url: str, data_dir: str
) -> dict[str, str]:
    """Settings for the Serve replicas (inherited by Ray workers started from this process)."""
    return {
        **service_environment(
            database_url=database_url,
            encryption_keys=encryption_keys,
            admin_token=admin_token,
            data_dir=data_dir,
            llm_url=llm_url,
            llm_api_key=TEST_LLM_KEY,
            metrics_token=METRICS_TOKEN,
        ),
        "AI_AGENTS_LLM_MODEL": "openai/gpt-4o-mini",
        "AI_AGENTS_LLM_FALLBACK_MODELS": "anthropic/claude-3-haiku",
        "AI_AGENTS_LLM_TIMEOUT_S": "5",
        "AI_AGENTS_JOB_RETRY_BASE_S": "0.5",
        "AI_AGENTS_JOB_LEASE_S": "20",
        "AI_AGENTS_DISPATCHER_POLL_S": "0.5",
        "AI_AGENTS_SDP_TIMEOUT_S": "5",
        "AI_AGENTS_PER_TENANT_INFLIGHT": "4",
        "AI_AGENTS_LOG_LEVEL": "INFO",
        "AI_AGENTS_LLM_BREAKER_RECOVERY_S": "2",
        # Every replica and actor appends its finished spans here (tests read the trace tree).
        "AI_AGENTS_TRACE_FILE": os.path.join(data_dir, "spans.jsonl"),
        **{k: v for k, v in os.environ.items() if k.startswith("AI_AGENTS_TEST_")},
    }


def replica_pids(deployment: str, address: str) -> list[int]:
    """PIDs of a deployment's live replicas on the cluster whose dashboard is ``address``."""
    from ray.util.state import list_actors

    actors = list_actors(address=address, filters=[("state", "=", "ALIVE")], limit=1000)
    return [a.pid for a in actors if a.class_name.endswith(f":{deployment}")]

"""What a pipeline benchmark runs against: the local stack (database, simulators, seeded tenants,
Ray + Serve) with the benchmark's environment, and a sender of new tickets as SDP reports
them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from benchmarks import REPO
from local_stack.database import Database, make_data_dir, remove_data_dir, start_database
from local_stack.environment import service_environment
from local_stack.ray_serve import RayServe
from local_stack.simulators import Simulators
from local_stack.tenants import Tenant, create_tenants, seed_knowledge

TEST_LLM_KEY = "sk-or-v1-benchmark"


def service_env(
    db: Database, *, llm_url: str = "http://127.0.0.1:9", **overrides: str
) -> dict[str, str]:
    """The service's environment for a benchmark: the local stack's, at INFO, with this
    repository importable by the workers; ``overrides`` (tuning, feature flags) on top."""
    env = {
        **service_environment(
            database_url=db.service_url,
            encryption_keys=db.encryption_keys,
            admin_token=db.admin_token,
            data_dir=str(db.data_dir),
            llm_url=llm_url,
            llm_api_key=TEST_LLM_KEY,
        ),
        "AI_AGENTS_LOG_LEVEL": "INFO",
        # Workers import `benchmarks.*` deployments (not an installed package).
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@dataclass
class Sent:
    tenant_id: str
    ticket_id: str
    enhancement_id: str | None
    status: int
    sent_at: float  # time.time()
    ack_ms: float


class TicketSender:
    """New tickets as SDP would report them: created in the SDP simulator (so the note can be
    written), then a signed v3 webhook with the full request object."""

    def __init__(self, url: str, sims: Simulators, *, timeout_s: float = 30) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.sims = sims
        self.http = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=64))
        self._n = 0

    def new_request(self, tenant: Tenant) -> dict[str, Any]:
        templates = tenant.templates or [
            {
                "subject": "Outlook keeps prompting for password",
                "description": (
                    "<div>Outlook prompts for credentials; mail server 10.20.30.40</div>"
                ),
            }
        ]
        template = dict(templates[self._n % len(templates)])
        self._n += 1
        for key in ("id", "display_id", "created_time", "last_updated_time"):
            template.pop(key, None)
        return self.sims.sdp.add_request(tenant.id, template)

    async def send(self, tenant: Tenant, *, retries: int = 0) -> Sent:
        from benchmarks.rig.loadgen import signed_headers

        request = self.new_request(tenant)
        body = json.dumps({"request": request}).encode()
        for attempt in range(retries + 1):
            sent_at = time.time()
            t0 = time.perf_counter()
            try:
                response = await self.http.post(
                    f"{self.url}/webhook/servicedesk/{tenant.id}",
                    content=body,
                    headers=signed_headers(tenant.secret.encode(), body),
                )
                status = response.status_code
                enhancement_id = (
                    response.json().get("enhancement_id") if status in (200, 202) else None
                )
            except Exception:  # noqa: BLE001 - e.g. the ingress is restarting
                status, enhancement_id = 0, None
            ack_ms = (time.perf_counter() - t0) * 1000
            if enhancement_id or attempt == retries:
                return Sent(tenant.id, request["id"], enhancement_id, status, sent_at, ack_ms)
            await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    async def open_loop(self, rate_per_s: float, count: int, pick: Any) -> list[Sent]:
        """``count`` webhooks at a fixed rate, not waiting for answers (open loop)."""
        start = time.monotonic()
        tasks = []
        for i in range(count):
            delay = start + i / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.send(pick(i))))
        return list(await asyncio.gather(*tasks))

    async def burst(self, count: int, pick: Any, concurrency: int = 32) -> list[Sent]:
        """``count`` webhooks as fast as ``concurrency`` connections allow."""
        queue = list(range(count))
        out: list[Sent] = []

        async def worker() -> None:
            while queue:
                i = queue.pop(0)
                out.append(await self.send(pick(i), retries=3))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return out

    async def close(self) -> None:
        await self.http.aclose()


@dataclass
class Rig:
    """Everything a pipeline benchmark runs against, started by ``pipeline_rig``."""

    db: Database
    sims: Simulators
    tenants: list[Tenant]
    seeded: dict[str, int]
    ray_serve: RayServe
    ray_start_s: float
    sender: TicketSender


@contextlib.asynccontextmanager
async def pipeline_rig(
    args: argparse.Namespace,
    prefix: str,
    tenant_count: int,
    *,
    dashboard: bool = False,
    start_ray: bool = True,
    **env: str,
) -> AsyncIterator[Rig]:
    """Database, simulators (``args.llm_latency``/``jitter``/``sdp_latency_ms``), seeded
    tenants, and Ray + Serve started (not yet deployed); all torn down on exit.
    ``start_ray=False`` (the pipeline floor): the port and environment are reserved but Ray is
    not started; whatever the caller starts on ``rig.ray_serve.url`` receives the webhooks."""
    data_dir = make_data_dir(prefix)
    sims = Simulators(
        llm_latency_s=args.llm_latency,
        llm_jitter_pct=args.jitter,
        sdp_latency_ms=args.sdp_latency_ms,
    )
    ray_serve: RayServe | None = None
    sender: TicketSender | None = None
    try:
        db = await start_database(data_dir)
        tenants = await create_tenants(db, tenant_count, prefix, sdp_url=sims.sdp_url, sims=sims)
        seeded = await seed_knowledge(db, tenants)
        ray_serve = RayServe(
            service_env(db, llm_url=sims.llm_url, **env),
            num_cpus=getattr(args, "num_cpus", 0) or None,
            dashboard=dashboard,
        )
        ray_start_s = ray_serve.start() if start_ray else 0.0
        sender = TicketSender(ray_serve.url, sims)
        yield Rig(db, sims, tenants, seeded, ray_serve, ray_start_s, sender)
    finally:
        if sender is not None:
            await sender.close()
        if ray_serve is not None:
            ray_serve.stop()
        sims.stop()
        remove_data_dir(data_dir)

"""The steps of `ai-agents demo` on top of the local stack (``local_stack``: simulators,
environment, Ray + Serve, waiting), which the benchmarks and the integration tests share.

Two demo tenants with imported history, KB and assets; the SDP simulator fires webhooks for new
tickets and the demo waits until every one has a note.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from cli.demo.quality import feedback_links
from core.ingress_mode import IngressMode, apply_ingress_mode
from local_stack.environment import (
    LOOPBACK_SDP,
    apply_environment,
    simulated_llm_environment,
)
from local_stack.ray_serve import (
    APP_NAME,
    deploy_app,
    machine_cpus,
    ray_init_kwargs,
    start_ray,
    start_serve,
    stop_ray,
)
from local_stack.results import TERMINAL_STATUSES, poll_until
from local_stack.runtime import Runtime, export_environment
from local_stack.simulators import Simulators
from local_stack.tenants import local_tenant_admin
from pipeline.batch.importers import import_assets_csv, import_kb_directory, import_resolved_tickets
from pipeline.batch.importers.tickets import import_client
from pipeline.retrieval.embedder import service_embedder
from pipeline.tenancy.admin import TenantCreate, TenantUpdate
from pipeline.tenancy.credential_cipher import CredentialCipher
from pipeline.tenancy.runtime import load_tenant_runtime
from pipeline.text.ticket_text import html_to_text, plain_text
from simulators.demo_data import TENANTS, load_demo_dataset

DEMO_TENANT_FILE = "demo-tenants.json"
# The simulators do not throttle, so the demo tenants get generous limits; production tenants
# keep the defaults (cloud SDP: 20 requests/minute).
DEMO_TENANT_SETTINGS = {
    "llm_rate_per_minute": 600,
    "sdp_rate_per_minute": 600,
    "webhook_rate_per_minute": 6000,
}
log = logging.getLogger(__name__)


@dataclass
class DemoOptions:
    tickets: int = 20
    http_port: int = 8000
    dashboard_port: int = 8265
    llm_latency_s: float = 1.0
    use_configured_llm: bool = False
    ingress: IngressMode = "haproxy"


@dataclass
class DemoResult:
    enhancements: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    # per tenant: demo tickets the SDP simulator resolved, and how many notes proposed the fix
    suggestion_hits: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the notes before and after the ranking learned from the first batch's resolutions
    learning: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        statuses = Counter(
            e["status"] if e["status"] != "completed" else f"completed ({e['outcome']})"
            for e in self.enhancements
        )
        totals = sorted(e["total_s"] for e in self.enhancements if e["total_s"] is not None)
        return {
            "tickets": len(self.enhancements),
            "statuses": dict(statuses),
            "p50_s": round(statistics.median(totals), 2) if totals else None,
            "p95_s": round(totals[max(0, int(len(totals) * 0.95 + 0.5) - 1)], 2)
            if totals
            else None,
            "notes_written": len(self.notes),
            "suggestion_hits": self.suggestion_hits,
            "learning": self.learning,
            "seconds": round(self.seconds, 1),
        }

    def all_done(self) -> bool:
        return all(e["status"] in TERMINAL_STATUSES for e in self.enhancements)


def demo_simulators(options: DemoOptions) -> Simulators:
    """The simulators with the demo tenants' portals and tickets loaded."""
    return Simulators(
        seed=7, demo_data=True, llm_latency_s=options.llm_latency_s, llm_jitter_pct=20
    )


def _credentials_file(data_dir: Path) -> Path:
    return data_dir / DEMO_TENANT_FILE


def _load_credentials(data_dir: Path) -> dict[str, dict[str, str]]:
    path = _credentials_file(data_dir)
    return json.loads(path.read_text()) if path.exists() else {}


def _save_credentials(data_dir: Path, creds: dict[str, dict[str, str]]) -> None:
    path = _credentials_file(data_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(creds, handle)


def _demo_credentials(webhook_secret: str | None, api_token: str | None) -> dict[str, str]:
    # create() returns both; rotate_secret() and rotate_token() each return theirs
    assert webhook_secret is not None and api_token is not None
    return {"webhook_secret": webhook_secret, "api_token": api_token}


async def prepare_tenants(
    pool: asyncpg.Pool, runtime: Runtime, data_dir: Path, sdp_url: str
) -> dict[str, dict[str, str]]:
    """Create the demo tenants, or point the existing ones at this run's simulator."""
    admin = local_tenant_admin(pool, runtime.encryption_keys)
    saved = _load_credentials(data_dir)
    existing = {t.id for t in await admin.list()}
    for tenant in TENANTS:
        data = load_demo_dataset(tenant)
        portal = tenant if data.sdp_edition == "cloud" else None
        if tenant not in existing:
            created = await admin.create(
                TenantCreate(
                    id=tenant,
                    name=tenant.title(),
                    sdp_url=sdp_url,
                    sdp_key=data.sdp_api_key,
                    sdp_edition=data.sdp_edition,
                    sdp_portal=portal,
                    settings=DEMO_TENANT_SETTINGS,
                ),
                actor="demo",
            )
            saved[tenant] = _demo_credentials(created.webhook_secret, created.api_token)
            continue
        await admin.update(
            tenant,
            TenantUpdate(sdp_url=sdp_url, sdp_key=data.sdp_api_key, status="active"),
            actor="demo",
        )
        if tenant not in saved:
            secret = await admin.rotate_secret(tenant, actor="demo")
            token = await admin.rotate_token(tenant, actor="demo")
            saved[tenant] = _demo_credentials(secret.webhook_secret, token.api_token)
    _save_credentials(data_dir, saved)
    return saved


async def import_demo_data(pool: asyncpg.Pool, runtime: Runtime) -> dict[str, dict[str, int]]:
    """History through the real importer (paging the SDP simulator), KB files and assets."""
    cipher = CredentialCipher.from_csv(runtime.encryption_keys)
    counts: dict[str, dict[str, int]] = {}
    for tenant in TENANTS:
        data = load_demo_dataset(tenant)
        tenant_runtime = await load_tenant_runtime(pool, cipher, tenant)
        assert tenant_runtime is not None
        client = import_client(tenant_runtime, calls_per_minute=6000)
        try:
            tickets = await import_resolved_tickets(
                pool, tenant, client, days=150, embedder=service_embedder()
            )
        finally:
            await client.aclose()
        kb = await import_kb_directory(pool, tenant, data.kb_dir, embedder=service_embedder())
        assets = await import_assets_csv(pool, tenant, data.assets_csv)
        counts[tenant] = {"tickets": tickets.seen, "kb": kb.seen, "assets": assets.seen}
    return counts


def demo_ticket_order() -> list[tuple[str, dict[str, Any]]]:
    """Every open demo ticket, tenants alternating: the order webhooks are fired in."""
    queues = {t: list(load_demo_dataset(t).open_tickets) for t in TENANTS}
    order: list[tuple[str, dict[str, Any]]] = []
    while any(queues.values()):
        for tenant in TENANTS:
            if queues[tenant]:
                order.append((tenant, queues[tenant].pop(0)))
    return order


async def fire_webhooks(
    base_url: str,
    sims: Simulators,
    creds: dict[str, dict[str, str]],
    count: int,
    *,
    start: int = 0,
) -> list[tuple[str, str, str]]:
    """What configured SDP instances do: one signed webhook per new ticket, tenants alternating,
    from the ``start``-th ticket of that order. Returns (tenant, ticket id, enhancement id)."""
    import httpx

    from simulators.servicedesk.webhook_sender import send_webhook_async, v3_payload

    sent: list[tuple[str, str, str]] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for tenant, ticket in demo_ticket_order()[start : start + count]:
            stored = sims.sdp.get_request(tenant, ticket["id"])
            # Each run is a fresh edit of the ticket (new version), so a re-run of the demo
            # enhances again instead of being answered as a duplicate delivery.
            stored["last_updated_time"] = {
                "value": str(time.time_ns() // 1_000_000),
                "display_value": "now",
            }
            response = await send_webhook_async(
                f"{base_url}/webhook/servicedesk/{tenant}",
                v3_payload(stored),
                "hmac",
                creds[tenant]["webhook_secret"],
                client=http,
            )
            if response.status_code not in (200, 202):
                raise RuntimeError(
                    f"webhook for {tenant}/{ticket['id']} answered "
                    f"{response.status_code}: {response.text[:200]}"
                )
            sent.append((tenant, ticket["id"], response.json()["enhancement_id"]))
    return sent


async def poll_results(
    pool: asyncpg.Pool, sent: list[tuple[str, str, str]], sims: Simulators
) -> DemoResult:
    result = DemoResult()
    from db.pool import tenant_transaction

    for tenant, ticket_id, enhancement_id in sent:
        async with tenant_transaction(pool, tenant) as conn:
            row = await conn.fetchrow(
                "SELECT status, outcome, stage_timings, note_id, error FROM enhancements "
                "WHERE id = $1::uuid",
                enhancement_id,
            )
        result.enhancements.append(
            {
                "tenant": tenant,
                "ticket_id": ticket_id,
                "enhancement_id": enhancement_id,
                "status": row["status"],
                "outcome": row["outcome"],
                "error": row["error"],
                "total_s": (row["stage_timings"] or {}).get("total"),
                "note_id": row["note_id"],
            }
        )
        for note in sims.sdp.recorded_notes(tenant, ticket_id):
            if enhancement_id in note.description:
                links = load_demo_dataset(tenant).expected_links.get(ticket_id)
                result.notes.append(
                    {
                        "tenant": tenant,
                        "ticket_id": ticket_id,
                        "enhancement_id": enhancement_id,
                        "note_id": note.note_id,
                        "private": not note.show_to_requester,
                        "text": html_to_text(note.description),
                        # counted as the note's word cap counts them (the text's list
                        # bullets are not words)
                        "words": len(plain_text(note.description).split()),
                        "feedback_links": feedback_links(note.description),
                        "expected_citations": sorted(links.citations) if links else [],
                    }
                )
    return result


async def wait_for_all(
    pool: asyncpg.Pool,
    sent: list[tuple[str, str, str]],
    sims: Simulators,
    on_progress: Any,
    timeout_s: float = 600,
) -> DemoResult:

    async def progress() -> DemoResult:
        result = await poll_results(pool, sent, sims)
        on_progress(sum(e["status"] in TERMINAL_STATUSES for e in result.enhancements))
        return result

    result, _ = await poll_until(progress, DemoResult.all_done, timeout_s=timeout_s, interval_s=0.5)
    return result


def configure_demo_environment(runtime: Runtime, sims: Simulators, options: DemoOptions) -> None:
    """The runtime's settings as `ai-agents serve` exports them, plus the simulators'; the
    operator's other ``AI_AGENTS_*`` settings are kept (e.g. a model choice)."""
    export_environment(runtime)
    # the notes' one-click feedback links point at this run's Serve app
    os.environ.setdefault("AI_AGENTS_PUBLIC_URL", f"http://127.0.0.1:{options.http_port}")
    env = dict(LOOPBACK_SDP)
    # the demo refits the ranking between its two batches: replicas read the new model at once
    env["AI_AGENTS_RANKING_MODEL_TTL_S"] = "0"
    if not options.use_configured_llm:
        env.update(simulated_llm_environment(sims.llm_url, "sk-or-v1-demo-simulator"))
        os.environ.pop("AI_AGENTS_LLM_FALLBACK_MODELS", None)
    apply_environment(env)


def start_ray_and_serve(options: DemoOptions) -> None:
    if os.environ.get("RAY_ADDRESS"):  # an existing cluster: only join it
        start_ray(namespace=APP_NAME, log_to_driver=False, logging_level=logging.WARNING)
    else:
        # the demo stops after its last note: nothing is left for direct ingress to drain
        apply_ingress_mode(options.ingress, drain_s=2.0)
        from core.settings import get_settings

        cpus = machine_cpus(get_settings().ray_num_cpus)
        start_ray(
            **ray_init_kwargs(num_cpus=cpus, dashboard=True, dashboard_port=options.dashboard_port)
        )
    start_serve(options.http_port)
    deploy_app()


def stop_ray_and_serve() -> None:
    stop_ray(shutdown_serve=True)

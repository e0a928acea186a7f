"""Observability of the running system: one trace per enhancement across every process, JSON
log lines carrying its ids, and every metric the alerts and dashboards use actually exported
(by Ray's metrics agent or by the ingress' /metrics), under the names the catalogue says."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest

from core import metric_catalogue as mc
from db.pool import tenant_transaction
from db.repositories import knowledge
from kuberay.validation import promql
from kuberay.validation.validate import dashboard_expressions
from local_stack.results import wait_until_idle
from simulators.servicedesk.webhook_sender import send_webhook_async, v3_payload
from tests.integration.harness import METRICS_AUTH, TenantHandle
from tests.integration.observability_support import (
    json_log_lines,
    metrics_port,
    samples,
    scrape,
    series_names,
    wait_for_spans,
)

pytestmark = pytest.mark.ray

# Recorded by `ai-agents reenhance` (a Ray Job), which this module does not run; only when a
# tenant's claim fails; only while jobs wait (tests/integration/test_backlog_autoscaling.py);
# the hit ratio appears once a tenant has 5 resolved enhanced tickets, which
# tests/pipeline/note/test_suggestion_quality.py drives and scrapes from the same /metrics;
# the confidence's live calibration from 20 resolved notes (tests/serve_app/test_calibration.py).
NOT_DRIVEN_HERE = {
    "ray_ai_agents_reenhance_items_total",
    "ray_ai_agents_dispatch_failures_total",
    "ray_ai_agents_backlog_jobs",
    "ai_agents_suggestion_hit_ratio",
    # only with a monthly budget set (tests/serve_app/test_usage_api.py drives them)
    "ai_agents_llm_budget_used_ratio",
    "ai_agents_llm_deployment_budget_used_ratio",
    "ai_agents_confidence_calibration_error",
    "ai_agents_confidence_reliability",
    "ai_agents_confidence_notes",
}


@dataclass
class Traffic:
    tenant: TenantHandle
    traced: dict[str, Any]  # the enhancement row of the traced ticket
    context_only: dict[str, Any]
    retried: dict[str, Any]


async def _seed(pool, tenant_id: str) -> None:
    async with tenant_transaction(pool, tenant_id) as conn:
        await knowledge.upsert_resolved_ticket(
            conn,
            tenant_id=tenant_id,
            ticket_id="R-1",
            subject="VPN tunnel drops hourly",
            description="AnyConnect users disconnected",
            resolution="Raised IKE lifetime",
            priority="High",
            tags=["vpn"],
            resolved_at=None,
        )
        await knowledge.upsert_kb_document(
            conn,
            tenant_id=tenant_id,
            doc_id="vpn-kb",
            title="VPN troubleshooting",
            body="When the VPN tunnel drops check the IKE rekey lifetime.",
            url=None,
            source_path=None,
        )
        await knowledge.upsert_asset(
            conn,
            tenant_id=tenant_id,
            network="10.9.0.15",
            hostname="vpn-gw-09",
            role="VPN gateway",
            owner="NetOps",
            location="DC1",
        )


async def _retried_enhancement(system) -> dict[str, Any]:
    """SDP answers 429 until the client gives up: the job goes back to the queue (a retry)
    and, with a tight SDP budget, the re-run waits on the tenant's token bucket."""
    tenant = await system.tenant("obsretry", settings={"sdp_rate_per_minute": 24})
    ticket = tenant.add_ticket(
        subject="Outlook crashes on start",
        # an address to redact: ray_ai_agents_redactions_total{kind="email"}
        description="Outlook 365 crashes right after the splash screen; mail it@obs.example",
    )
    # 4 = the SDP client's attempts per call (EnhancerConfig.sdp_max_attempts).
    system.sdp.set_faults(tenant.tenant_id, http_429_next=4, retry_after_s=0.1)
    return await tenant.wait(await tenant.send_ticket(ticket), timeout_s=60)


@pytest.fixture(scope="module")
async def traffic(system, pool, owner_conn) -> Traffic:
    await wait_until_idle(owner_conn)
    system.llm.clear_faults()
    tenant = await system.tenant("obs")
    other = await system.tenant("obsother")
    await _seed(pool, tenant.tenant_id)
    ticket = tenant.add_ticket(
        subject="VPN keeps dropping", description="The VPN tunnel to gateway 10.9.0.15 drops hourly"
    )
    # No description in the webhook: the context gatherer fetches the ticket from SDP.
    sent = await tenant.send({"ticket_id": ticket["id"], "subject": ticket["subject"]})
    assert sent.status_code == 202, sent.text
    traced, retried = await asyncio.gather(
        tenant.wait(sent.json()["enhancement_id"]), _retried_enhancement(system)
    )

    forged = await send_webhook_async(
        f"{system.url}/webhook/servicedesk/{tenant.tenant_id}",
        v3_payload(ticket),
        "hmac",
        "not-the-secret",
        client=system.http,
    )
    assert forged.status_code == 403
    cross = await system.http.get(
        f"{system.url}/api/v1/enhancements",
        params={"tenant_id": other.tenant_id},
        headers=tenant.auth,
    )
    assert cross.status_code == 403
    feedback = await system.http.post(
        f"{system.url}/api/v1/feedback",
        headers=tenant.auth,
        json={"enhancement_id": traced["id"], "feedback_type": "rating", "rating_value": 4},
    )
    assert feedback.status_code == 201, feedback.text

    system.llm.add_fault("server_error", count=None, status=503)
    try:
        down = tenant.add_ticket(subject="Printer offline", description="Floor 3 HP offline")
        context_only = await tenant.wait(await tenant.send_ticket(down))
    finally:
        system.llm.clear_faults()
    assert context_only["outcome"] == "context_only", context_only
    return Traffic(tenant, traced, context_only, retried)


def _by_name(spans: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        out.setdefault(span["name"], []).append(span)
    return out


async def test_one_trace_from_webhook_to_note(traffic) -> None:
    row = traffic.traced
    assert row["status"] == "completed" and row["outcome"] == "llm", row
    trace_id, enhancement_id = row["trace_id"], row["id"]
    ids = {
        "tenant.id": traffic.tenant.tenant_id,
        "ticket.id": row["ticket_id"],
        "enhancement.id": enhancement_id,
    }
    everything = await wait_for_spans(
        lambda spans: any(
            s["name"] == "enhancement.run" and s["trace_id"] == trace_id for s in spans
        )
    )
    spans = [s for s in everything if s["trace_id"] == trace_id]
    named = _by_name(spans)
    by_id = {s["span_id"]: s for s in spans}

    [receive] = named["webhook.receive"]
    # FastAPI (>= 0.16x) traces each request itself: the trace's root is the webhook's HTTP
    # span (continuing the caller's `traceparent` when one is sent).
    # (a test client whose httpx is instrumented sends one, so "root" means: the first span
    # the service recorded, whose parent is not among this trace's service spans)
    [http_root] = [s for s in spans if s["parent_span_id"] not in by_id]
    assert http_root["name"] == "POST /webhook/servicedesk/{tenant_id}"
    [run] = named["enhancement.run"]
    assert run["parent_span_id"] == receive["span_id"]  # across the database hand-off
    for span in (receive, run, *named["sdp.add_note"]):
        assert {k: span["attributes"].get(k) for k in ids} == ids, span
    for stage in ("enhancement.context", "enhancement.synthesis", "enhancement.writeback"):
        [span] = named[stage]
        assert span["parent_span_id"] == run["span_id"], stage
    synthesis = named["enhancement.synthesis"][0]["attributes"]
    assert synthesis["llm.model"] == row["model"] and synthesis["llm.prompt_tokens"] > 0

    context_span = named["enhancement.context"][0]["span_id"]
    for source in ("sdp_ticket", "similar_tickets", "kb_articles", "ip_assets"):
        [span] = named[f"context.{source}"]
        assert span["parent_span_id"] == context_span, source
        assert span["attributes"]["tenant.id"] == ids["tenant.id"]
        assert span["attributes"]["context.status"] == "ok", span
    [note] = named["sdp.add_note"]
    assert note["parent_span_id"] == named["enhancement.writeback"][0]["span_id"]
    assert note["attributes"]["sdp.note_id"] == row["note_id"]

    # a fresh tenant's replicas hold no allowance yet: each budget's first call leases one
    reserves = named["rate_limit.lease"]
    assert {r["attributes"]["rate_limit.bucket"] for r in reserves} == {"sdp", "llm"}
    assert all(r["attributes"]["tenant.id"] == ids["tenant.id"] for r in reserves)
    assert any(r["parent_span_id"] == note["span_id"] for r in reserves)

    def ancestors(span: dict[str, Any]) -> list[str]:
        chain = []
        while span["parent_span_id"] in by_id and len(chain) < 30:
            span = by_id[span["parent_span_id"]]
            chain.append(span["span_id"])
        return chain

    assert receive["span_id"] in ancestors(run)
    for span in spans:  # one tree: every span's ancestry reaches the webhook's request
        assert span is http_root or ancestors(span)[-1] == http_root["span_id"], span["name"]
    # Ingress, enhancer, gatherer, synthesizer and limiter actors: separate processes.
    assert len({s["pid"] for s in spans}) >= 4
    # Nothing of this enhancement ended up in another trace.
    strays = [
        s
        for s in everything
        if s["attributes"].get("enhancement.id") == enhancement_id and s["trace_id"] != trace_id
    ]
    assert strays == []


async def test_replica_logs_are_json_lines_with_the_ids(traffic) -> None:
    row = traffic.traced
    deadline = time.monotonic() + 10
    while True:
        lines = json_log_lines()
        done = [
            e
            for e in lines
            if e.get("enhancement_id") == row["id"] and e["message"] == "enhancement completed"
        ]
        if done or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert done, "no JSON line for the completed enhancement in the session's logs"
    entry = done[0]
    assert entry["level"] == "INFO" and entry["logger"] == "pipeline.enhancer"
    assert entry["tenant_id"] == traffic.tenant.tenant_id
    assert entry["ticket_id"] == row["ticket_id"]
    assert entry["trace_id"] == row["trace_id"] and len(entry["span_id"]) == 16
    assert entry["timestamp"].endswith("Z")
    rejected = [
        e
        for e in lines
        if e["message"] == "webhook rejected" and e.get("tenant_id") == traffic.tenant.tenant_id
    ]
    assert rejected and rejected[0]["reason"] and rejected[0]["level"] == "WARNING"


def _referenced_names() -> set[str]:
    import json
    from pathlib import Path

    import yaml

    root = Path(promql.__file__).parents[1]  # kuberay/, beside its validation/ package
    exprs = [
        rule["expr"]
        for group in yaml.safe_load((root / "alerts.yaml").read_text())["groups"]
        for rule in group["rules"]
    ]
    for board in sorted((root / "dashboards").glob("*.json")):
        exprs += dashboard_expressions(json.loads(board.read_text()))
    return set().union(*(promql.metric_names(e) for e in exprs))


def _expected_catalogue_series() -> dict[str, str]:
    expected = {}
    for spec in mc.ALL_METRICS:
        if spec.kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                expected[spec.exported + suffix] = "histogram"
        else:
            expected[spec.exported] = spec.kind
    return expected


def _tenant_samples_exported(ray_text: str, tenant: str) -> bool:
    """Ray exports on an interval: wait for this test's own samples, not just the names."""
    violations = samples(ray_text, "ray_ai_agents_tenant_isolation_violations_total")
    webhooks = samples(ray_text, "ray_ai_agents_webhooks_total")
    return (
        any(labels.get("tenant") == tenant for labels, _ in violations)
        and any(
            labels.get("tenant") == tenant and labels.get("outcome") == "rejected_auth"
            for labels, _ in webhooks
        )
        and {"completed", "context_only"} <= _finished_statuses(ray_text, tenant)
    )


def _finished_statuses(ray_text: str, tenant: str) -> set[str | None]:
    """The enhancement outcomes Ray has exported for one tenant so far."""
    return {
        labels.get("status")
        for labels, _ in samples(ray_text, "ray_ai_agents_enhancements_total")
        if labels.get("tenant") == tenant
    }


async def test_every_alert_and_dashboard_metric_is_exported(system, traffic) -> None:
    referenced = _referenced_names()
    assert referenced >= promql.RAY_NATIVE_METRICS  # the dashboards do use them
    expected = _expected_catalogue_series()
    ray_url = f"http://127.0.0.1:{metrics_port()}/metrics"
    wanted = (referenced | set(expected)) - NOT_DRIVEN_HERE
    deadline = time.monotonic() + 90
    seen: set[str] = set()  # a gauge set once shows in the scrapes after it was recorded
    while True:  # Ray's agent exports what replicas recorded every few seconds
        ray_text, ingress_text = (
            await scrape(ray_url),
            await scrape(f"{system.url}/metrics", METRICS_AUTH),
        )
        ray_names, ingress_names = series_names(ray_text), series_names(ingress_text)
        seen |= set(ray_names) | set(ingress_names)
        missing = wanted - seen
        if not _tenant_samples_exported(ray_text, traffic.tenant.tenant_id):
            missing.add("(this test's tenant-labelled samples)")
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    assert not missing, f"never exported: {sorted(missing)}"

    for name, kind in expected.items():  # each catalogue name, on the right target and type
        if name in NOT_DRIVEN_HERE:
            continue
        spec_target = "ray" if name.startswith("ray_") else "ingress"
        seen = ray_names if spec_target == "ray" else ingress_names
        assert seen.get(name) == kind, (name, seen.get(name), kind)
    # Counters are exported once, with _total and no gauge twin under the bare name.
    for spec in mc.ALL_METRICS:
        if spec.kind == "counter" and spec.exported not in NOT_DRIVEN_HERE:
            assert f"ray_{spec.name}" not in ray_names

    tenant = traffic.tenant.tenant_id
    violations = samples(ray_text, "ray_ai_agents_tenant_isolation_violations_total")
    assert any(labels.get("tenant") == tenant and value >= 1 for labels, value in violations)
    webhooks = samples(ray_text, "ray_ai_agents_webhooks_total")
    assert any(
        labels.get("tenant") == tenant and labels.get("outcome") == "rejected_auth"
        for labels, _ in webhooks
    )
    assert {"completed", "context_only"} <= _finished_statuses(ray_text, tenant)
    pools = {
        (labels["component"], labels["state"])
        for labels, _ in samples(ray_text, "ray_ai_agents_db_pool_connections")
    }
    assert {("ingress", "in_use"), ("enhancer", "idle")} <= pools
    assert traffic.retried["status"] == "completed" and traffic.retried["attempts"] >= 2

    ratings = samples(ingress_text, "ai_agents_feedback_average_rating")
    assert (dict(tenant=tenant), 4.0) in [(labels, value) for labels, value in ratings]
    assert samples(ingress_text, "ai_agents_database_up") == [({}, 1.0)]
    healthy = samples(ray_text, "ray_serve_deployment_replica_healthy")
    assert {labels.get("deployment") for labels, _ in healthy} >= {"Ingress", "Enhancer"}

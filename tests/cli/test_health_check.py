"""`ai-agents health` logic against the real database and the real HTTP API; only Ray's
dashboard and Prometheus are faked (to stand in for "absent" and for states hard to produce)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import httpx
import pytest

from cli.health.checks import (
    HealthOptions,
    check_alerts,
    check_api_health,
    check_api_ready,
    check_database,
    check_queue,
    check_ray,
    check_recent_errors,
    check_serve,
    dashboard_address,
    ray_auth_token,
    run_health_checks,
)
from core.settings import Settings
from db.pool import tenant_transaction
from db.repositories.enhancements import enqueue
from serve_app.api import create_api
from serve_app.api_state import ApiState

DEAD = "http://127.0.0.1:9"
METRICS_TOKEN = "met_health-check-test"


async def _enqueue(pool, tenant_id: str, n: int) -> list[uuid.UUID]:
    ids = []
    async with tenant_transaction(pool, tenant_id) as conn:
        for i in range(n):
            job = await enqueue(
                conn,
                tenant_id=tenant_id,
                ticket_id=f"HC-{i}",
                event="created",
                dedupe_key=uuid.uuid4().hex,
                payload={},
                trace_context=None,
                trace_id=None,
                notify=False,
            )
            ids.append(job.id)
    return ids


@pytest.fixture
async def api_client(database, encryption_keys):
    settings = Settings(
        database_url=database.service_url,
        encryption_keys=encryption_keys,
        admin_token="adm_x",
        metrics_token=METRICS_TOKEN,
    )
    state = ApiState.from_settings(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(create_api(state)), base_url="http://api"
    ) as client:
        yield client
    await state.close()


def _fake(routes: dict[str, httpx.Response]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        return routes.get(request.url.path, httpx.Response(404))

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_queue_and_recent_errors_read_postgres(pool, make_tenant, owner_conn) -> None:
    tenant = (await make_tenant("hc")).tenant_id
    ids = await _enqueue(pool, tenant, 12)
    # other tests' tenants share the session database (some backdate their jobs)
    check = await check_queue(pool, HealthOptions(max_queue_depth=100_000, max_oldest_queued_s=1e9))
    assert check.status == "ok", check
    assert check.details["queued_by_tenant"][tenant] == 12
    assert (await check_queue(pool, HealthOptions(max_queue_depth=5))).status == "fail"

    await owner_conn.execute(
        "UPDATE enhancements SET status = 'failed', finished_at = now(), error = 'x' "
        "WHERE id = ANY($1::uuid[])",
        ids[:11],
    )
    lenient = await check_recent_errors(pool, HealthOptions(min_success_rate=0.0))
    assert lenient.status == "warn" and lenient.details["failed_by_tenant"][tenant] == 11
    strict = await check_recent_errors(pool, HealthOptions(min_success_rate=0.999))
    assert strict.status == "fail"
    assert "failed of" in strict.summary


async def test_database_check(pool) -> None:
    check = await check_database(pool)
    assert check.status == "ok" and check.details["latency_ms"] >= 0
    down = await check_database(None, "ConnectionRefusedError")
    assert down.status == "fail" and "ConnectionRefusedError" in down.summary
    assert (await check_queue(None, HealthOptions())).status == "skip"


async def test_api_checks_against_the_real_api(api_client) -> None:
    options = HealthOptions(api_url="http://api", api_token=METRICS_TOKEN)
    assert (await check_api_health(api_client, options)).status == "ok"
    ready = await check_api_ready(api_client, options)
    assert ready.status == "ok", ready
    assert ready.details["components"]["database"]["ok"] is True
    assert ready.details["components"]["vector_search"] == {"ok": True, "mode": "hybrid"}
    # without the token /api/v1/ready says only "ready", and the check says why it saw no more
    anonymous = await check_api_ready(api_client, HealthOptions(api_url="http://api"))
    assert anonymous.status == "ok" and "metrics token" in anonymous.summary
    assert anonymous.details["components"] == {}


async def test_api_not_ready_when_its_database_is_away(encryption_keys) -> None:
    settings = Settings(
        database_url="postgresql://u:p@127.0.0.1:9/x",
        encryption_keys=encryption_keys,
        metrics_token=METRICS_TOKEN,
    )
    state = ApiState.from_settings(settings)
    transport = httpx.ASGITransport(create_api(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        options = HealthOptions(api_url="http://api", api_token=METRICS_TOKEN)
        assert (await check_api_health(client, options)).status == "ok"
        ready = await check_api_ready(client, options)
    assert ready.status == "fail" and "database" in ready.summary


async def test_everything_unreachable_fails() -> None:
    options = HealthOptions(api_url=DEAD, dashboard_url=DEAD, prometheus_url=DEAD, timeout_s=2)
    async with httpx.AsyncClient() as http:
        report = await run_health_checks(options, http, None, "OSError: refused")
    statuses = {c.name: c.status for c in report.checks}
    assert statuses == {
        "ray": "fail",
        "serve": "fail",
        "database": "fail",
        "queue": "skip",
        "api_health": "fail",
        "api_ready": "fail",
        "recent_errors": "skip",
        "alerts": "fail",
    }
    assert not report.ok
    document = json.loads(json.dumps(report.to_dict()))
    assert document["ok"] is False and len(document["checks"]) == 8


def _applications(
    status: str = "RUNNING",
    enhancer: str = "HEALTHY",
    replica_states: tuple[str, ...] = ("RUNNING",),
) -> dict:
    def deployment(state: str, replicas: tuple[str, ...]) -> dict:
        return {
            "status": state,
            "target_num_replicas": len(replicas),
            "message": "",
            "replicas": [{"state": s} for s in replicas],
        }

    return {
        "applications": {
            "ai_agents": {
                "status": status,
                "deployments": {
                    "Ingress": deployment("HEALTHY", ("RUNNING",)),
                    "Enhancer": deployment(enhancer, replica_states),
                },
            }
        }
    }


async def test_serve_check_reads_replica_states() -> None:
    options = HealthOptions(dashboard_url="http://dash")
    path = "/api/serve/applications/"
    async with _fake({path: httpx.Response(200, json=_applications())}) as http:
        healthy = await check_serve(http, options)
    assert healthy.status == "ok" and "2 replicas running" in healthy.summary
    unhealthy = _applications("DEPLOYING", "UNHEALTHY", ("STARTING", "STOPPING"))
    async with _fake({path: httpx.Response(200, json=unhealthy)}) as http:
        broken = await check_serve(http, options)
    assert broken.status == "fail" and "Enhancer UNHEALTHY (0 running)" in broken.summary
    assert broken.details["deployments"]["Enhancer"]["replicas"] == {"STARTING": 1, "STOPPING": 1}
    # the autoscaler moving a pool between its bounds is normal operation; an update in
    # progress still serves but is worth a look
    scaling = _applications("RUNNING", "UPSCALING", ("RUNNING", "STARTING"))
    async with _fake({path: httpx.Response(200, json=scaling)}) as http:
        autoscaling = await check_serve(http, options)
    assert autoscaling.status == "ok" and "(1 autoscaling)" in autoscaling.summary
    updating = _applications("RUNNING", "UPDATING", ("RUNNING", "STARTING"))
    async with _fake({path: httpx.Response(200, json=updating)}) as http:
        changing = await check_serve(http, options)
    assert changing.status == "warn" and "Enhancer UPDATING (1 running)" in changing.summary
    failed = _applications("RUNNING", "DEPLOY_FAILED", ("RUNNING",))
    async with _fake({path: httpx.Response(200, json=failed)}) as http:
        assert (await check_serve(http, options)).status == "fail"
    async with _fake({path: httpx.Response(200, json={"applications": {}})}) as http:
        missing = await check_serve(http, options)
    assert missing.status == "fail" and "not deployed" in missing.summary
    async with _fake({path: httpx.Response(401, text="Unauthorized")}) as http:
        refused = await check_serve(http, options)
    assert refused.status == "fail" and "token" in refused.summary


async def test_ray_check_counts_nodes_and_cpu() -> None:
    nodes = {
        "data": {
            "result": {
                "result": [
                    {"state": "ALIVE", "resources_total": {"CPU": 4.0, "node:10.0.0.1": 1.0}},
                    {"state": "DEAD", "resources_total": {"CPU": 4.0}},
                ]
            }
        }
    }
    usage = {"data": {"clusterStatus": {"loadMetricsReport": {"usage": {"CPU": [3.0, 4.0]}}}}}
    routes = {
        "/api/v0/nodes": httpx.Response(200, json=nodes),
        "/api/cluster_status": httpx.Response(200, json=usage),
    }
    async with _fake(routes) as http:
        check = await check_ray(http, HealthOptions(dashboard_url="http://dash"))
    assert check.status == "ok" and check.summary == "1 node(s) alive, 3/4 CPU in use"
    assert check.details["dead_nodes"] == 1 and check.details["resources_total"] == {"CPU": 4.0}


async def test_alerts_from_prometheus() -> None:
    firing = {
        "data": {
            "alerts": [
                {"state": "firing", "labels": {"alertname": "HighQueueDepth"}, "activeAt": "t"},
                {"state": "pending", "labels": {"alertname": "LowSuccessRate"}},
            ]
        }
    }
    options = HealthOptions(prometheus_url="http://prom")
    async with _fake({"/api/v1/alerts": httpx.Response(200, json=firing)}) as http:
        check = await check_alerts(http, options)
    assert check.status == "fail" and "HighQueueDepth" in check.summary
    assert check.details["pending"] == 1
    quiet = {"data": {"alerts": []}}
    async with _fake({"/api/v1/alerts": httpx.Response(200, json=quiet)}) as http:
        assert (await check_alerts(http, options)).status == "ok"
        assert (await check_alerts(http, HealthOptions())).status == "skip"


def test_address_and_token_resolution(monkeypatch, tmp_path) -> None:
    for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS", "RAY_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "auto")  # not an http address: ignored
    assert dashboard_address() == "http://127.0.0.1:8265"
    # the dashboard a local `ai-agents serve --dashboard-port` started, when nothing says else
    assert dashboard_address(None, "http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265/")
    assert dashboard_address() == "http://head:8265"
    assert dashboard_address(None, "http://127.0.0.1:9000") == "http://head:8265"
    assert dashboard_address("http://x:1") == "http://x:1"
    token_file = tmp_path / "token"
    token_file.write_text("abc\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert ray_auth_token() == "abc"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert ray_auth_token() == "from-env" and ray_auth_token("flag") == "flag"


def test_cli_exit_code_and_json_with_a_dead_api(database, encryption_keys) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_AGENTS_", "RAY_"))}
    env.update(
        AI_AGENTS_DATABASE_URL=database.service_url,
        AI_AGENTS_ENCRYPTION_KEYS=encryption_keys,
        AI_AGENTS_ADMIN_TOKEN="adm_x",
    )
    result = subprocess.run(
        ["ai-agents", "health", "--json", "--url", DEAD, "--dashboard", DEAD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    statuses = {c["name"]: c["status"] for c in document["checks"]}
    assert statuses["database"] == "ok" and statuses["api_health"] == "fail"
    assert result.stderr == ""

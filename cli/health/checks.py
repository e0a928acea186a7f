"""`ai-agents health`: the five-minute health check (docs/operations/health.md).

It asks about nodes and replicas, the queue, the database, `/health`, recent errors and firing
alerts, each where it is answered on Ray:
- the Ray dashboard's REST API (cluster nodes and resources, Serve application and replica
  states): no Ray driver is started, so the check works from a laptop against a cluster and
  never joins it as a client;
- PostgreSQL as the restricted service role, through the ``app_*`` SECURITY DEFINER functions
  (queue depth, oldest queued job, outcomes in the last minutes) — the queue lives there;
- the ingress' own `/health` and `/api/v1/ready`;
- Prometheus' `/api/v1/alerts` when its URL is given.

Every check yields ok / warn / fail / skip; the exit code says the worst
(``HealthReport.exit_code``). Thresholds follow the alert rules (queue <= 50, success rate
>= 95%).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx

from db.pool import system_fetch
from pipeline.text.redaction import redact_secrets_only

Status = Literal["ok", "warn", "fail", "skip"]
DEFAULT_DASHBOARD = "http://127.0.0.1:8265"


@dataclass
class Check:
    name: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class HealthOptions:
    api_url: str = "http://127.0.0.1:8000"
    dashboard_url: str = DEFAULT_DASHBOARD
    prometheus_url: str | None = None
    app_name: str = "ai_agents"
    max_queue_depth: int = 50
    max_oldest_queued_s: float = 300.0
    window_s: int = 300
    min_success_rate: float = 0.95
    timeout_s: float = 5.0
    ray_token: str | None = None
    # the metrics (or admin) token: /api/v1/ready shows its components only to it
    api_token: str | None = None


HEALTH_EXIT_CODES = {"healthy": 0, "unhealthy": 1, "degraded": 3}


@dataclass
class HealthReport:
    checks: list[Check]
    checked_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    @property
    def verdict(self) -> Literal["healthy", "degraded", "unhealthy"]:
        if not self.ok:
            return "unhealthy"
        return "degraded" if any(c.status == "warn" for c in self.checks) else "healthy"

    @property
    def exit_code(self) -> int:
        """0 healthy (OK/SKIP only), 1 unhealthy (a FAIL), 3 degraded (WARN, no FAIL): a
        script must not read a warning as success. 2 stays the usage-error code."""
        return HEALTH_EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "checked_at": self.checked_at,
            "checks": [asdict(c) for c in self.checks],
        }


def dashboard_address(explicit: str | None = None, discovered: str | None = None) -> str:
    """The same order `ray job` uses — flag, RAY_API_SERVER_ADDRESS, an http RAY_ADDRESS —
    then ``discovered`` (the dashboard a local `ai-agents serve` started), then Ray's default."""
    if explicit:
        return explicit.rstrip("/")
    for value in (os.environ.get("RAY_API_SERVER_ADDRESS"), os.environ.get("RAY_ADDRESS")):
        if value and value.startswith(("http://", "https://")):
            return value.rstrip("/")
    return (discovered or DEFAULT_DASHBOARD).rstrip("/")


def ray_auth_token(explicit: str | None = None) -> str | None:
    """Ray ≥ 2.5x clusters require a token on the dashboard API; found where Ray looks."""
    if explicit:
        return explicit
    if token := os.environ.get("RAY_AUTH_TOKEN"):
        return token.strip()
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def describe_failure(exc: BaseException) -> str:
    """One line; credentials in a connection error's URL are masked."""
    text = redact_secrets_only(str(exc).splitlines()[0]) if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


async def _dashboard_get(http: httpx.AsyncClient, options: HealthOptions, path: str) -> Any:
    headers = {"Authorization": f"Bearer {options.ray_token}"} if options.ray_token else {}
    response = await http.get(
        f"{options.dashboard_url}{path}", headers=headers, timeout=options.timeout_s
    )
    if response.status_code in (401, 403):
        raise PermissionError(f"dashboard refused the Ray auth token (HTTP {response.status_code})")
    response.raise_for_status()
    return response.json()


async def check_ray(http: httpx.AsyncClient, options: HealthOptions) -> Check:
    """`ray status` in one line: alive nodes and CPU in use."""
    try:
        nodes = (await _dashboard_get(http, options, "/api/v0/nodes"))["data"]["result"]["result"]
    except Exception as exc:  # noqa: BLE001 - unreachable in any way is the answer
        return Check(
            "ray",
            "fail",
            f"Ray dashboard {options.dashboard_url} unreachable ({describe_failure(exc)})",
        )
    alive = [n for n in nodes if n.get("state") == "ALIVE"]
    totals: dict[str, float] = {}
    for node in alive:
        for resource, amount in (node.get("resources_total") or {}).items():
            if not resource.startswith("node:"):
                totals[resource] = totals.get(resource, 0.0) + float(amount)
    usage: dict[str, list[float]] = {}
    try:
        status = await _dashboard_get(http, options, "/api/cluster_status")
        usage = status["data"]["clusterStatus"]["loadMetricsReport"]["usage"] or {}
    except Exception:  # noqa: BLE001, S110 - usage is a nice-to-have; the node list decides
        usage = {}
    cpu = usage.get("CPU")
    cpu_text = f"{cpu[0]:g}/{cpu[1]:g} CPU in use" if cpu else f"{totals.get('CPU', 0):g} CPU"
    details = {
        "alive_nodes": len(alive),
        "dead_nodes": len(nodes) - len(alive),
        "resources_total": totals,
        "usage": usage,
    }
    if not alive:
        return Check("ray", "fail", "no alive Ray node", details)
    return Check("ray", "ok", f"{len(alive)} node(s) alive, {cpu_text}", details)


# Serve's deployment states: moving between the autoscaling bounds is normal operation, not
# trouble (a health check that failed on every load spike would page for nothing); an update in
# progress, or a replica being replaced, still serves but is worth a look; the rest is broken.
HEALTHY_DEPLOYMENT = frozenset({"HEALTHY", "UPSCALING", "DOWNSCALING"})
CHANGING_DEPLOYMENT = frozenset({"UPDATING"})


async def check_serve(http: httpx.AsyncClient, options: HealthOptions) -> Check:
    """The Serve tab of the dashboard: application status and every deployment's replicas."""
    try:
        data = await _dashboard_get(http, options, "/api/serve/applications/")
    except Exception as exc:  # noqa: BLE001
        return Check("serve", "fail", f"Serve status unavailable ({describe_failure(exc)})")
    app = (data.get("applications") or {}).get(options.app_name)
    if app is None:
        return Check(
            "serve",
            "fail",
            f"application {options.app_name!r} is not deployed",
            {"applications": sorted(data.get("applications") or {})},
        )
    deployments: dict[str, Any] = {}
    problems, changing = [], []
    for name, deployment in (app.get("deployments") or {}).items():
        states: dict[str, int] = {}
        for replica in deployment.get("replicas") or []:
            states[replica.get("state", "?")] = states.get(replica.get("state", "?"), 0) + 1
        running = states.get("RUNNING", 0)
        status = deployment.get("status")
        deployments[name] = {
            "status": status,
            "replicas": states,
            "target_replicas": deployment.get("target_num_replicas"),
            "message": deployment.get("message") or "",
        }
        if running == 0 or status not in HEALTHY_DEPLOYMENT | CHANGING_DEPLOYMENT:
            problems.append(f"{name} {status} ({running} running)")
        elif status in CHANGING_DEPLOYMENT:
            changing.append(f"{name} {status} ({running} running)")
    app_status = app.get("status")
    details = {"application_status": app_status, "deployments": deployments}
    if app_status not in ("RUNNING", "DEPLOYING") or problems:
        summary = f"application {app_status}" + (f"; {', '.join(problems)}" if problems else "")
        return Check("serve", "fail", summary, details)
    replicas = sum(d["replicas"].get("RUNNING", 0) for d in deployments.values())
    if app_status == "DEPLOYING" or changing:
        summary = f"application {app_status}, {replicas} replicas running" + (
            f"; {', '.join(changing)}" if changing else ""
        )
        return Check("serve", "warn", summary, details)
    scaling = sum(d["status"] != "HEALTHY" for d in deployments.values())
    return Check(
        "serve",
        "ok",
        f"{len(deployments)} deployments healthy, {replicas} replicas running"
        + (f" ({scaling} autoscaling)" if scaling else ""),
        details,
    )


async def check_database(pool: asyncpg.Pool | None, error: str | None = None) -> Check:
    if pool is None:
        return Check("database", "fail", f"cannot connect ({error or 'no pool'})")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(5):
            await pool.fetchval("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        return Check("database", "fail", f"SELECT 1 failed ({describe_failure(exc)})")
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    status: Status = "warn" if latency_ms > 500 else "ok"
    return Check("database", status, f"reachable, {latency_ms} ms", {"latency_ms": latency_ms})


async def check_queue(pool: asyncpg.Pool | None, options: HealthOptions) -> Check:
    """Jobs waiting in PostgreSQL: how many, and how long the oldest has waited."""
    if pool is None:
        return Check("queue", "skip", "database unavailable")
    try:
        rows = await system_fetch(pool, "SELECT * FROM app_queue_stats()")
    except Exception as exc:  # noqa: BLE001
        return Check("queue", "fail", f"queue stats failed ({describe_failure(exc)})")
    queued = sum(int(r["queued"]) for r in rows)
    running = sum(int(r["running"]) for r in rows)
    oldest = max((float(r["oldest_queued_age_s"]) for r in rows), default=0.0)
    per_tenant = {r["tenant_id"]: int(r["queued"]) for r in rows if r["queued"]}
    details = {
        "queued": queued,
        "running": running,
        "oldest_queued_age_s": round(oldest, 1),
        "queued_by_tenant": per_tenant,
    }
    summary = f"{queued} queued, {running} running, oldest queued {oldest:.0f}s"
    if queued > options.max_queue_depth or oldest > options.max_oldest_queued_s:
        return Check("queue", "fail", summary, details)
    return Check("queue", "ok", summary, details)


async def check_recent_errors(pool: asyncpg.Pool | None, options: HealthOptions) -> Check:
    """Failed enhancements in the window; fails like the LowSuccessRate alert would."""
    if pool is None:
        return Check("recent_errors", "skip", "database unavailable")
    try:
        rows = await system_fetch(pool, "SELECT * FROM app_recent_outcomes($1)", options.window_s)
    except Exception as exc:  # noqa: BLE001
        return Check("recent_errors", "fail", f"outcome query failed ({describe_failure(exc)})")
    finished = sum(int(r["n"]) for r in rows if r["status"] in ("completed", "failed"))
    failed = sum(int(r["n"]) for r in rows if r["status"] == "failed")
    by_tenant = {r["tenant_id"]: int(r["n"]) for r in rows if r["status"] == "failed"}
    details = {
        "window_s": options.window_s,
        "finished": finished,
        "failed": failed,
        "failed_by_tenant": by_tenant,
    }
    summary = f"{failed} failed of {finished} finished in the last {options.window_s}s"
    if failed == 0:
        return Check("recent_errors", "ok", summary, details)
    if finished >= 10 and failed / finished > 1 - options.min_success_rate:
        return Check("recent_errors", "fail", summary, details)
    return Check("recent_errors", "warn", summary, details)


async def check_api_health(http: httpx.AsyncClient, options: HealthOptions) -> Check:
    try:
        response = await http.get(f"{options.api_url}/health", timeout=options.timeout_s)
        body = response.json()
    except Exception as exc:  # noqa: BLE001
        return Check(
            "api_health", "fail", f"{options.api_url}/health unreachable ({describe_failure(exc)})"
        )
    if response.status_code == 200 and body.get("status") == "healthy":
        return Check("api_health", "ok", "healthy", {"status_code": 200})
    return Check(
        "api_health", "fail", f"HTTP {response.status_code}", {"status_code": response.status_code}
    )


async def check_api_ready(http: httpx.AsyncClient, options: HealthOptions) -> Check:
    try:
        headers = {"Authorization": f"Bearer {options.api_token}"} if options.api_token else {}
        response = await http.get(
            f"{options.api_url}/api/v1/ready", timeout=options.timeout_s, headers=headers
        )
        body = response.json()
    except Exception as exc:  # noqa: BLE001
        return Check(
            "api_ready",
            "fail",
            f"{options.api_url}/api/v1/ready unreachable ({describe_failure(exc)})",
        )
    components = body.get("components") or {}
    failing = sorted(name for name, c in components.items() if not c.get("ok"))
    details = {"status_code": response.status_code, "components": components}
    if response.status_code == 200 and not failing:
        if "components" not in body:  # the token was not accepted: status only
            return Check("api_ready", "ok", "ready (components need the metrics token)", details)
        return Check("api_ready", "ok", f"ready ({len(components)} components)", details)
    return Check(
        "api_ready",
        "fail",
        "not ready: " + (", ".join(failing) or f"HTTP {response.status_code}"),
        details,
    )


async def check_alerts(http: httpx.AsyncClient, options: HealthOptions) -> Check:
    if not options.prometheus_url:
        return Check("alerts", "skip", "no --prometheus URL given")
    url = f"{options.prometheus_url.rstrip('/')}/api/v1/alerts"
    try:
        response = await http.get(url, timeout=options.timeout_s)
        response.raise_for_status()
        alerts = response.json()["data"]["alerts"]
    except Exception as exc:  # noqa: BLE001
        return Check("alerts", "fail", f"Prometheus unreachable ({describe_failure(exc)})")
    firing = [a for a in alerts if a.get("state") == "firing"]
    names = sorted({a.get("labels", {}).get("alertname", "?") for a in firing})
    details = {
        "firing": [
            {
                "alertname": a.get("labels", {}).get("alertname"),
                "labels": a.get("labels", {}),
                "activeAt": a.get("activeAt"),
            }
            for a in firing
        ],
        "pending": sum(1 for a in alerts if a.get("state") == "pending"),
    }
    if firing:
        return Check("alerts", "fail", f"{len(firing)} firing: {', '.join(names)}", details)
    return Check("alerts", "ok", "no alert firing", details)


async def run_health_checks(
    options: HealthOptions,
    http: httpx.AsyncClient,
    pool: asyncpg.Pool | None,
    pool_error: str | None = None,
) -> HealthReport:
    """All checks at once (they are independent); ``pool`` is None when the database could not
    be reached, and ``pool_error`` says why."""
    checks = await asyncio.gather(
        check_ray(http, options),
        check_serve(http, options),
        check_database(pool, pool_error),
        check_queue(pool, options),
        check_api_health(http, options),
        check_api_ready(http, options),
        check_recent_errors(pool, options),
        check_alerts(http, options),
    )
    return HealthReport(list(checks))

"""`ai-agents health`: the quick health check (docs/operations/health.md) as one command."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import typer
from rich.console import Console
from rich.table import Table

from cli.health.checks import (
    HealthOptions,
    HealthReport,
    dashboard_address,
    describe_failure,
    ray_auth_token,
    run_health_checks,
)
from cli.support import (
    DataDirOption,
    JsonOption,
    emit_json,
    load_runtime,
    one_line_errors,
    reachable_url,
    service_pool,
    settings_for,
)
from local_stack.processes import live_run_record

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
DB_CONNECT_TIMEOUT_S = 20.0


async def _collect(options: HealthOptions, data_dir: str | None) -> HealthReport:
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient())
        pool, error = None, None
        try:
            async with asyncio.timeout(DB_CONNECT_TIMEOUT_S):
                runtime = await load_runtime(data_dir, migrate=False)
                options.api_token = runtime.metrics_token or runtime.admin_token
                pool = await stack.enter_async_context(service_pool(runtime))
        except Exception as exc:  # noqa: BLE001 - the database check reports it
            error = describe_failure(exc)
        return await run_health_checks(options, http, pool, error)


def _print_table(report: HealthReport) -> None:
    table = Table("check", "status", "detail", title="AI Agents health")
    for check in report.checks:
        style = _STYLE[check.status]
        table.add_row(check.name, f"[{style}]{check.status.upper()}[/{style}]", check.summary)
    console = Console()
    console.print(table)
    verdict = {
        "healthy": "[green]healthy[/green]",
        "degraded": "[yellow]DEGRADED[/yellow]",
        "unhealthy": "[bold red]UNHEALTHY[/bold red]",
    }[report.verdict]
    console.print(f"{verdict} — checked at {report.checked_at}")


@one_line_errors
def health(
    url: str | None = typer.Option(
        None,
        "--url",
        envvar="AI_AGENTS_API_URL",
        help="Base URL of the ingress (where /health is served); default: where the "
        "`ai-agents serve` running on this data directory listens, else "
        "http://AI_AGENTS_HTTP_HOST:AI_AGENTS_HTTP_PORT",
    ),
    dashboard: str | None = typer.Option(
        None,
        "--dashboard",
        help="Ray dashboard URL (default: RAY_API_SERVER_ADDRESS, an http RAY_ADDRESS, the "
        "dashboard of the `ai-agents serve` running on this data directory, or "
        "http://127.0.0.1:8265)",
    ),
    prometheus: str | None = typer.Option(
        None, "--prometheus", help="Prometheus base URL; firing alerts fail the check"
    ),
    ray_token: str | None = typer.Option(
        None,
        "--ray-token",
        envvar="RAY_AUTH_TOKEN",
        help="Ray auth token (default: RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)",
    ),
    max_queue: int = typer.Option(
        50, "--max-queue", min=0, help="Queued jobs above this fail the check"
    ),
    window: int = typer.Option(
        300, "--window", min=10, help="Seconds of finished enhancements to count errors in"
    ),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Quick health check: Ray, Serve replicas, queue, database, API, errors, alerts.

    Each check is OK, WARN, FAIL or SKIP. Exit code: 0 healthy, 1 a check failed (or the
    check could not run), 2 usage error, 3 degraded (a warning, no failure).
    Reads the Ray dashboard API without joining the cluster, and PostgreSQL
    as the service role (AI_AGENTS_DATABASE_URL or the embedded database).

    Example: ai-agents health --url http://127.0.0.1:8000 --json
    """
    settings = settings_for(data_dir)
    # `serve --port/--dashboard-port` in another terminal: its run record says where it is;
    # else where `serve` listens with the same configuration
    running = live_run_record(settings.data_dir)
    local = reachable_url(settings.http_host, settings.http_port)
    options = HealthOptions(
        api_url=(url or (running.api_url if running else None) or local).rstrip("/"),
        dashboard_url=dashboard_address(dashboard, running.dashboard_url if running else None),
        prometheus_url=prometheus,
        ray_token=ray_auth_token(ray_token),
        max_queue_depth=max_queue,
        window_s=window,
    )
    report = asyncio.run(_collect(options, data_dir))
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_table(report)
    if report.exit_code:
        raise typer.Exit(report.exit_code)

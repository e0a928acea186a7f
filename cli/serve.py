"""`ai-agents serve`: the service on a local Ray (or an existing cluster via ``RAY_ADDRESS``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading

import typer

from cli.support import (
    DataDirOption,
    IngressChoice,
    IngressOption,
    err,
    load_runtime,
    one_line_errors,
    reachable_url,
    settings_for,
)
from core.ingress_mode import apply_ingress_mode
from db.pool import create_pool, verify_service_role
from local_stack.processes import RunRecorder, clean_up_after_crash
from local_stack.ray_auth import DASHBOARD_TOKEN_HINT


async def _check_service_role(url: str) -> None:
    """Refuse to start (one line, exit 1) with a role that could read across tenants."""
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        await verify_service_role(pool)
    finally:
        await pool.close()


@one_line_errors
def serve(
    port: int = typer.Option(None, "--port", help="HTTP port (default AI_AGENTS_HTTP_PORT)"),
    host: str = typer.Option(None, "--host", help="Bind address (default AI_AGENTS_HTTP_HOST)"),
    ingress: IngressChoice | None = IngressOption,
    dashboard_port: int = typer.Option(
        8265, "--dashboard-port", help="Ray dashboard port when this command starts Ray"
    ),
    data_dir: str | None = DataDirOption,
) -> None:
    """Run the service: migrations, then the Serve application on a local or existing Ray.

    Example: AI_AGENTS_LLM_API_KEY=sk-or-... ai-agents serve --port 8000
    """
    import ray
    from ray import serve as ray_serve

    from actors.app import build_app
    from actors.deployment_options import APP_NAME
    from local_stack.ray_serve import (
        cluster_cpus,
        machine_cpus,
        ray_init_kwargs,
        start_ray,
        stop_ray,
    )
    from local_stack.runtime import export_environment

    settings = settings_for(data_dir)
    bind_host, bind_port = host or settings.http_host, port or settings.http_port
    clean_up_after_crash(settings.data_dir)
    runtime = asyncio.run(load_runtime(data_dir))
    asyncio.run(_check_service_role(runtime.service_url))
    export_environment(runtime)
    joining = "RAY_ADDRESS" in os.environ
    if not joining:
        apply_ingress_mode(ingress.mode if ingress else settings.serve_ingress)
    recorder = RunRecorder(settings.data_dir, "serve").start()  # before Ray spawns anything
    # ray.init installs a SIGTERM handler that exits on the spot; ours (set right after) stops
    # cleanly, and is in place before the app starts so an early SIGTERM is not lost either
    stop = threading.Event()
    try:
        if joining:
            ray.init(namespace=APP_NAME, log_to_driver=False, logging_level=logging.WARNING)
        else:
            cpus = machine_cpus(settings.ray_num_cpus)
            start_ray(
                **ray_init_kwargs(num_cpus=cpus, dashboard=True, dashboard_port=dashboard_port)
            )
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        ray_serve.start(http_options={"host": bind_host, "port": bind_port})
        # for `ai-agents health` in another terminal (it reads the record of a live run);
        # written before the app is up, so it is there as soon as the API answers
        recorder.record.api_url = reachable_url(bind_host, bind_port)
        if not joining:
            recorder.record.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        recorder.refresh()
        # the pools' max_replicas sized to the cluster's CPUs (deployment_options.node_scale)
        ray_serve.run(build_app(node_cpus=cluster_cpus()), name=APP_NAME, route_prefix="/")
        recorder.refresh()
        err.print(f"Serving on http://{bind_host}:{bind_port} (Ctrl-C stops)")
        if not joining:
            err.print(f"Ray dashboard: http://127.0.0.1:{dashboard_port} ({DASHBOARD_TOKEN_HINT})")
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.5):
                pass
    finally:
        stop_ray(shutdown_serve=True)  # and takes back the cluster's name in its temp dir
        recorder.stop()

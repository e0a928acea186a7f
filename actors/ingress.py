"""IngressDeployment: the HTTP ingress (``serve_app.ingress.Ingress``) inside Ray Serve, with
the pools' readiness, which only Ray can see."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import ReplicaState

from actors.deployment_options import APP_NAME, INGRESS, pool_options
from actors.replica_setup import RayMetrics
from core.settings import get_settings
from pipeline.observability.connection_gauge import start_connection_gauge
from pipeline.observability.logging_setup import configure_logging
from pipeline.observability.tracing import configure_tracing
from serve_app.ingress import Ingress

_BROKEN_STATES = {
    "UNHEALTHY",
    "DEPLOY_FAILED",
    "DeploymentStatus.UNHEALTHY",
    "DeploymentStatus.DEPLOY_FAILED",
}


@serve.deployment(name=INGRESS, **pool_options(INGRESS))
@serve.ingress()
class IngressDeployment:
    def __init__(self, dispatcher: DeploymentHandle) -> None:
        configure_tracing()
        configure_logging(get_settings().log_level)
        self._dispatcher = dispatcher
        self._logic = Ingress(
            get_settings(), metrics=RayMetrics(), readiness_probe=self._pipeline_status
        )
        state = self._logic.state
        self._connection_gauge = start_connection_gauge(state.metrics, "ingress", state.pool)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._logic.app

    async def _pipeline_status(self) -> dict[str, dict[str, Any]]:
        components: dict[str, dict[str, Any]] = {}
        try:
            async with asyncio.timeout(3):
                status = await self._dispatcher.status.remote()
            components["dispatcher"] = {"ok": bool(status.get("healthy")), **status}
        except Exception as exc:  # noqa: BLE001
            components["dispatcher"] = {"ok": False, "error": type(exc).__name__}
        try:
            app = (await asyncio.to_thread(serve.status)).applications.get(APP_NAME)
            for name, deployment in app.deployments.items() if app else []:
                running = deployment.replica_states.get(ReplicaState.RUNNING, 0)
                # UPSCALING/DOWNSCALING are healthy pools changing size, not failures.
                healthy = str(deployment.status) not in _BROKEN_STATES
                components[f"pool:{name}"] = {
                    "ok": healthy and running > 0,
                    "status": str(deployment.status),
                    "running_replicas": running,
                }
        except Exception as exc:  # noqa: BLE001
            components["pools"] = {"ok": False, "error": type(exc).__name__}
        return components

    async def __del__(self) -> None:
        await self._logic.close()

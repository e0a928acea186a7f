"""Dispatcher: the singleton that moves persisted jobs into the Enhancer pool."""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from actors.pool_options import DISPATCHER, pool_options
from db.pool import create_pool, verify_service_role
from pipeline.dispatch import ClaimedJob, DispatcherConfig, JobDispatcher
from pipeline.logging_setup import configure_logging
from serve_app.settings import get_settings


@serve.deployment(name=DISPATCHER, **pool_options(DISPATCHER))
class Dispatcher:
    async def __init__(self, enhancer: DeploymentHandle) -> None:
        settings = get_settings()
        configure_logging(settings.log_level)
        url = settings.database_url.get_secret_value()
        self._enhancer = enhancer
        self._pool = await create_pool(url, min_size=1, max_size=4)
        await verify_service_role(self._pool)  # refuse to run with a role that bypasses RLS
        self._dispatcher = JobDispatcher(
            self._pool, self._submit, listen_url=url,
            config=DispatcherConfig(per_tenant_cap=settings.per_tenant_inflight,
                                    max_inflight=settings.dispatch_max_inflight,
                                    batch=settings.dispatch_batch, lease_s=settings.job_lease_s,
                                    poll_s=settings.dispatcher_poll_s,
                                    retry_base_s=settings.job_retry_base_s))
        await self._dispatcher.start()

    async def _submit(self, job: ClaimedJob) -> Any:
        return await self._enhancer.run.remote(job)

    def status(self) -> dict[str, Any]:
        return self._dispatcher.status() | {"healthy": self._dispatcher.healthy()}

    def check_health(self) -> None:
        if not self._dispatcher.healthy():
            raise RuntimeError("dispatcher loop is not running")

    async def __del__(self) -> None:
        await self._dispatcher.stop()
        await self._pool.close()

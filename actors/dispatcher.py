"""Dispatcher: the singleton that moves persisted jobs into the Enhancer pool, and hosts the
retention task.

Every reap tick it publishes the claimable backlog for the pools' autoscaling policy
(``actors.backlog_policy``) and reads back how many Enhancer replicas run, which sizes its
in-flight cap (``pipeline.dispatch.scaling.inflight_cap``). With ``AI_AGENTS_DISPATCH_ADAPTIVE``
(the default) the cap also follows what the pipeline completes (``pipeline.dispatch.admission``),
between ``AI_AGENTS_DISPATCH_MIN_INFLIGHT`` and ``AI_AGENTS_DISPATCH_MAX_INFLIGHT``. The backlog
and the replica count go through Ray's GCS, so a Dispatcher restarted on another node picks them
up again; jobs it held are re-queued by lease recovery.

Retention (``pipeline.retention.purge``) runs here because this deployment is the service's one
singleton with a database pool and periodic work: one purge for the whole service, never two
racing for the same rows, restarted with the replica. It runs as its own task in small
batches, so it never delays a claim.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from actors.backlog_policy import publish_backlog, read_running_replicas
from actors.deployment_options import DISPATCHER, ENHANCER, pool_options
from actors.replica_setup import DatabasePool, replica_resources
from db.pool import verify_service_role
from pipeline.dispatch.admission import AdmissionConfig
from pipeline.dispatch.dispatcher import ClaimedJob, Dispatcher, DispatcherConfig
from pipeline.dispatch.scaling import BacklogReport
from pipeline.retention.purge import RetentionConfig, RetentionPolicy, RetentionTask


@serve.deployment(name=DISPATCHER, **pool_options(DISPATCHER))
class DispatcherDeployment:
    async def __init__(  # type: ignore[misc]  # Ray Serve awaits an async constructor
        self, enhancer: DeploymentHandle
    ) -> None:
        # default priority like the Ingress (it hands out the work; see process_priority), and
        # no tracing set-up: its spans come from the enhancement the Enhancer runs
        replica = await replica_resources(
            database=DatabasePool(min_size=1, max_size=4), tracing=False, lower_priority=False
        )
        settings = replica.settings
        self._enhancer = enhancer
        assert replica.pool is not None  # asked for above
        self._pool = replica.pool
        await verify_service_role(self._pool)  # refuse to run with a role that bypasses RLS
        target = pool_options(ENHANCER)["autoscaling_config"]["target_ongoing_requests"]
        upper = settings.dispatch_max_inflight
        admission = AdmissionConfig(
            floor=min(settings.dispatch_min_inflight, upper),
            upper=upper,
            initial=min(upper, max(settings.dispatch_min_inflight, 64)),
        )
        self._dispatcher = Dispatcher(
            self._pool,
            self._submit,
            listen_url=replica.database_url,
            config=DispatcherConfig(
                per_tenant_cap=settings.per_tenant_inflight,
                max_inflight=settings.dispatch_max_inflight,
                target_per_replica=float(target),
                batch=settings.dispatch_batch,
                lease_s=settings.job_lease_s,
                poll_s=settings.dispatcher_poll_s,
                retry_base_s=settings.job_retry_base_s,
                intake_priority_rate=settings.intake_priority_rate,
                intake_priority_inflight=settings.intake_priority_inflight,
                intake_priority_hold_s=settings.intake_priority_hold_s,
                admission=admission if settings.dispatch_adaptive else None,
            ),
            metrics=replica.metrics,
            on_backlog=self._on_backlog,
        )
        await self._dispatcher.start()
        self._retention = RetentionTask(
            self._pool,
            RetentionPolicy.from_settings(settings),
            RetentionConfig(every_s=settings.retention_every_s, batch=settings.retention_batch),
        )
        self._retention.start()

    def _on_backlog(self, report: BacklogReport) -> None:
        """Publish the backlog for the policy; learn the Enhancer's running replicas."""
        publish_backlog(report)
        capacity = read_running_replicas(ENHANCER)
        if capacity is None:
            self._dispatcher.running_replicas = None
        else:
            self._dispatcher.running_replicas, self._dispatcher.config.target_per_replica = capacity

    async def _submit(self, job: ClaimedJob) -> Any:
        return await self._enhancer.run.remote(job)

    def status(self) -> dict[str, Any]:
        return self._dispatcher.status() | {
            "healthy": self._dispatcher.healthy(),
            "retention": self._retention.status(),
        }

    def check_health(self) -> None:
        if not self._dispatcher.healthy():
            raise RuntimeError("dispatcher loop is not running")

    async def __del__(self) -> None:
        await self._retention.stop()
        await self._dispatcher.stop()
        await self._pool.close()

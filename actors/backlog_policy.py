"""The Serve autoscaling policy of the Enhancer, Synthesizer and ContextGatherer pools, and the
channel through which it meets the Dispatcher.

The pools scale on the durable backlog (claimable jobs in PostgreSQL) plus the requests already
in flight. ``actors/deployment_options.py`` sets ``autoscaling_config.policy`` to
``{"policy_function": "actors.backlog_policy:BacklogPolicy"}``; Serve instantiates the class once
per deployment in its controller and calls it every control-loop tick, then applies min/max
replicas, the delays and the scaling factors. The maths is
``pipeline.dispatch.scaling.replicas_wanted``; this module is the glue.

The channel is two small values in Ray's GCS key-value store, readable from any node and
outliving any replica: the Dispatcher publishes the claimable backlog every reap tick; the policy
publishes the Enhancer's running replicas and their target, which size the Dispatcher's
in-flight cap. Each carries a time stamp, so a reader ignores a stale value (a dead writer).
Without a fresh report the backlog counts as 0 and the pool scales on in-flight requests as
Serve's default policy would; while intake has priority (a webhook storm) the pool holds its
replica count.

What it asks for never exceeds what can start (``pipeline.dispatch.scaling.placeable_replicas``):
at the same poll interval it reads the free and total logical CPUs Ray reports, and a pool grows
only by the replicas its ``cpus_per_replica`` (the pool's ``ray_actor_options.num_cpus``, passed
as ``policy_kwargs``) fit into the free CPUs, plus, where the cluster can add nodes
(``max_cluster_cpus``, set by ``kuberay render`` from the worker groups), into the CPUs new
nodes would bring, which is how the Ray autoscaler learns that a node is needed. With
``backlog=False`` (the Ingress) the durable backlog is not counted: in-flight requests only,
still within capacity.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from ray.experimental import internal_kv

from actors.deployment_options import ENHANCER
from core import metric_catalogue as mc
from pipeline.dispatch.scaling import (
    BACKLOG_REPORT_MAX_AGE_S,
    BacklogReport,
    ClusterCapacity,
    placeable_replicas,
    replicas_wanted,
)

# Not __name__ (the rule everywhere else): this runs inside the Serve controller, and Serve
# writes its controller log file from the "ray.serve" logger, where an operator looks.
log = logging.getLogger("ray.serve")


class BacklogPolicy:
    def __init__(
        self,
        poll_interval_s: float = 2.0,
        cpus_per_replica: float = 0.0,
        max_cluster_cpus: float | None = None,
        backlog: bool = True,
    ) -> None:
        self._poll_interval_s = poll_interval_s
        self._cpus_per_replica = float(cpus_per_replica)
        self._max_cluster_cpus = None if max_cluster_cpus is None else float(max_cluster_cpus)
        self._backlog = backlog
        self._capacity: ClusterCapacity | None = None
        self._report: BacklogReport | None = None
        self._polled_at = 0.0
        self._published: tuple[int, float] | None = None  # (running replicas, when)
        self._gauge: Any = None

    def _fresh_report(self) -> BacklogReport | None:
        now = time.monotonic()
        if now - self._polled_at >= self._poll_interval_s:
            self._polled_at = now
            self._capacity = self._read_capacity()
            try:
                self._report = read_backlog() if self._backlog else None
            except Exception as exc:  # noqa: BLE001 - never break Serve's control loop
                log.warning("reading the backlog report failed: %s", exc)
                self._report = None
        report = self._report
        return report if report is not None and report.is_fresh() else None

    def _read_capacity(self) -> ClusterCapacity | None:
        """Free and total logical CPUs now (two GCS reads, at the poll interval); None when
        unreadable, and then the pool asks as Serve's own policy would."""
        if self._cpus_per_replica <= 0:
            return None
        try:
            import ray

            return ClusterCapacity(
                free_cpus=float(ray.available_resources().get("CPU", 0.0)),
                total_cpus=float(ray.cluster_resources().get("CPU", 0.0)),
                max_cpus=self._max_cluster_cpus,
            )
        except Exception as exc:  # noqa: BLE001 - never break Serve's control loop
            log.warning("reading the cluster's CPUs failed: %s", exc)
            return None

    def _publish_replicas(self, deployment: str, running: int, target: float) -> None:
        """At most every 10 s unless the count changed (a GCS write is a blocking RPC)."""
        if deployment != ENHANCER:
            return
        now = time.monotonic()
        if self._published and self._published[0] == running and now - self._published[1] < 10:
            return
        try:
            publish_running_replicas(deployment, running, target)
            self._published = (running, now)
        except Exception as exc:  # noqa: BLE001
            log.warning("publishing the replica count failed: %s", exc)

    def _record(self, deployment: str, desired: float, low: int, high: int) -> None:
        """The gauge shows what the policy asks for within min/max (before the delays)."""
        try:
            if self._gauge is None:
                from ray.util import metrics

                spec = mc.AUTOSCALE_DESIRED
                self._gauge = metrics.Gauge(spec.name, spec.description, tag_keys=spec.labels)
            self._gauge.set(
                min(max(math.ceil(desired), low), high), tags={"deployment": deployment}
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("recording the desired replicas failed: %s", exc)

    def __call__(self, ctx: Any) -> tuple[float, dict[str, Any]]:
        report = self._fresh_report()
        target = ctx.config.get_target_ongoing_requests()
        current = ctx.current_num_replicas
        wanted = replicas_wanted(report, ctx.total_num_requests, target, current)
        desired = placeable_replicas(wanted, current, self._cpus_per_replica, self._capacity)
        self._publish_replicas(ctx.deployment_name, ctx.current_num_replicas, target)
        self._record(
            ctx.deployment_name,
            desired,
            ctx.capacity_adjusted_min_replicas,
            ctx.capacity_adjusted_max_replicas,
        )
        return desired, {
            "backlog_jobs": report.claimable if report else 0,
            "intake_priority": bool(report and report.intake_priority),
            "free_cpus": self._capacity.free_cpus if self._capacity else None,
        }


# The GCS channel between the Dispatcher and the policy.
NAMESPACE = "ai_agents_autoscaling"
BACKLOG_KEY = "backlog"


def _replicas_key(deployment: str) -> str:
    return f"running_replicas:{deployment}"


def publish_backlog(report: BacklogReport) -> None:
    internal_kv._internal_kv_put(BACKLOG_KEY, report.to_json(), overwrite=True, namespace=NAMESPACE)


def read_backlog() -> BacklogReport | None:
    return BacklogReport.from_json(internal_kv._internal_kv_get(BACKLOG_KEY, namespace=NAMESPACE))


def publish_running_replicas(deployment: str, running: int, target_per_replica: float) -> None:
    value = json.dumps(
        {"running": int(running), "target": float(target_per_replica), "at": time.time()}
    ).encode()
    internal_kv._internal_kv_put(
        _replicas_key(deployment), value, overwrite=True, namespace=NAMESPACE
    )


def read_running_replicas(
    deployment: str, max_age_s: float = BACKLOG_REPORT_MAX_AGE_S
) -> tuple[int, float] | None:
    """(running replicas, their target_ongoing_requests as deployed, which values overrides may
    have changed); None when never published, unreadable or stale."""
    raw = internal_kv._internal_kv_get(_replicas_key(deployment), namespace=NAMESPACE)
    try:
        data = json.loads(raw) if raw else None
        if data is None or time.time() - float(data["at"]) > max_age_s:
            return None
        return max(0, int(data["running"])), max(1.0, float(data["target"]))
    except (ValueError, TypeError, KeyError):
        return None

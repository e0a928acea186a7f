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
from pipeline.dispatch.scaling import BACKLOG_REPORT_MAX_AGE_S, BacklogReport, replicas_wanted

# Not __name__ (the rule everywhere else): this runs inside the Serve controller, and Serve
# writes its controller log file from the "ray.serve" logger, where an operator looks.
log = logging.getLogger("ray.serve")


class BacklogPolicy:
    def __init__(self, poll_interval_s: float = 2.0) -> None:
        self._poll_interval_s = poll_interval_s
        self._report: BacklogReport | None = None
        self._polled_at = 0.0
        self._published: tuple[int, float] | None = None  # (running replicas, when)
        self._gauge: Any = None

    def _fresh_report(self) -> BacklogReport | None:
        now = time.monotonic()
        if now - self._polled_at >= self._poll_interval_s:
            self._polled_at = now
            try:
                self._report = read_backlog()
            except Exception as exc:  # noqa: BLE001 - never break Serve's control loop
                log.warning("reading the backlog report failed: %s", exc)
                self._report = None
        report = self._report
        return report if report is not None and report.is_fresh() else None

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
        desired = replicas_wanted(report, ctx.total_num_requests, target, ctx.current_num_replicas)
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

"""Where the Dispatcher and the backlog autoscaling policy meet: two small values in Ray's GCS
key-value store, readable from any node.

- The Dispatcher writes the claimable backlog
  (``pipeline.dispatch.scaling.BacklogReport``) every reap tick (5 s); the policy, running in the
  Serve controller, reads it at most every few seconds.
- The policy writes the Enhancer's running replica count and its target_ongoing_requests as
  deployed; the Dispatcher reads them to size its in-flight cap
  (``pipeline.dispatch.scaling.inflight_cap``).

Both carry their own time stamp so a reader can ignore a stale value (a dead writer). The GCS
outlives any replica, so a Dispatcher restarted on another node reads the same values.
"""

from __future__ import annotations

import json
import time

from ray.experimental import internal_kv

from pipeline.dispatch.scaling import BACKLOG_REPORT_MAX_AGE_S, BacklogReport

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

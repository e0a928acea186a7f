"""Scaling maths, Ray-free: how many pool replicas the durable backlog asks for, and how many
jobs the Dispatcher may keep in flight for the replicas that run.

Why here and not in the Ray glue: the jobs table is the real queue, which Serve cannot see, so
the decisions that turn it into replica targets must be testable without a cluster.

Interface (the backlog policy, the Dispatcher and its claim planner use it):
- ``desired_replicas(backlog, ongoing, target_per_replica)`` -> float: replicas that would
  serve the claimable backlog plus the requests already in flight at ``target_per_replica``
  each. Serve's wrapper then applies ``min_replicas``/``max_replicas``, the upscale and
  downscale delays and the scaling factors, exactly as for its default policy.
- ``replicas_wanted(report, ongoing, target_per_replica, current)``: the policy's answer —
  ``desired_replicas`` on a fresh report, held at ``current`` while intake has priority.
- ``placeable_replicas(desired, current, cpus_per_replica, capacity)``: ``desired`` cut to the
  replicas that can start: the running ones plus as many more as the free CPUs Ray reports
  hold, plus, where the cluster can add nodes (``ClusterCapacity.max_cpus``), as many as the
  CPUs it may still add hold. Asking beyond that would leave replicas pending.
- ``inflight_cap(running_replicas, target_per_replica, upper_bound)`` -> int: the Dispatcher's
  in-flight limit: running Enhancer replicas x their ``target_ongoing_requests``, never above
  ``AI_AGENTS_DISPATCH_MAX_INFLIGHT`` and never below one replica's worth.
- ``BacklogReport``: what the Dispatcher publishes every reap tick (claimable jobs in total and
  per tenant, jobs running, when measured, whether intake has priority now); ``is_fresh`` says
  whether a policy may trust it.

Settings: ``AI_AGENTS_DISPATCH_MAX_INFLIGHT`` (upper bound of the cap), each pool's
``autoscaling_config`` in ``actors/deployment_options.py`` (min/max replicas, target, delays).
Metrics: ``ai_agents_backlog_jobs{tenant}`` (the backlog the policy used, recorded by the
Dispatcher) and ``ai_agents_autoscale_desired_replicas{deployment}`` (what the policy asked
for, recorded by the Serve controller); both exported by Ray with the ``ray_`` prefix.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

# A report older than this is ignored (the Dispatcher died or lost the database): the pools
# then scale on in-flight requests alone, as Serve's default policy does.
BACKLOG_REPORT_MAX_AGE_S = 60.0


def desired_replicas(backlog: float, ongoing: float, target_per_replica: float) -> float:
    """Replicas wanted for ``backlog`` claimable jobs plus ``ongoing`` requests in flight.

    Every claimable job will become one request at each pool, so the backlog adds to the pool's
    own load one for one; dividing by the per-replica target is Serve's default rule.
    """
    if target_per_replica <= 0:
        raise ValueError("target_per_replica must be positive")
    work = max(0.0, float(backlog)) + max(0.0, float(ongoing))
    return work / target_per_replica


def replicas_wanted(
    report: BacklogReport | None, ongoing: float, target_per_replica: float, current: int
) -> float:
    """The backlog policy's answer for one pool. No fresh report: in-flight requests alone
    (Serve's default rule). Intake has priority (``pipeline.dispatch.intake_priority``): hold at
    ``current`` — the Dispatcher is holding the backlog back, and new replicas would take the
    CPU intake needs; the backlog counts again the moment the storm is over."""
    if report is not None and report.intake_priority:
        return float(current)
    return desired_replicas(report.claimable if report else 0, ongoing, target_per_replica)


def inflight_cap(running_replicas: int | None, target_per_replica: float, upper_bound: int) -> int:
    """Jobs the Dispatcher may hold in flight. ``running_replicas`` None: not known yet (no
    report from the policy) -> the upper bound."""
    upper = max(1, int(upper_bound))
    if running_replicas is None:
        return upper
    per_replica = max(1, math.floor(target_per_replica))
    return min(upper, max(1, running_replicas) * per_replica)


@dataclass(frozen=True)
class ClusterCapacity:
    """The cluster's logical CPUs as Ray reports them, and how far it may grow.

    ``max_cpus`` is the most CPUs the cluster can have once its autoscaler has added every node
    it may (KubeRay: the head plus every worker group at ``maxReplicas``); ``None`` when it
    cannot add nodes (one machine), so the CPUs it has now are all there will be."""

    free_cpus: float
    total_cpus: float
    max_cpus: float | None = None

    def headroom_cpus(self) -> float:
        """CPUs a new replica can still get: free now, plus what new nodes would bring."""
        growth = 0.0 if self.max_cpus is None else max(0.0, self.max_cpus - self.total_cpus)
        return max(0.0, self.free_cpus) + growth


# Float noise in Ray's resource arithmetic (0.1 + 0.2 CPUs) must not cost a replica.
_CPU_EPS = 1e-6


def placeable_replicas(
    desired: float, current: int, cpus_per_replica: float, capacity: ClusterCapacity | None
) -> float:
    """``desired`` replicas, never more than can start: the ``current`` ones (they hold their
    CPUs already) plus as many as ``capacity.headroom_cpus()`` holds at ``cpus_per_replica``.

    Scaling down is never cut. ``capacity`` None (not read yet, or unreadable) or a replica
    that reserves no CPU: ``desired`` unchanged, as Serve's own policy would ask."""
    if capacity is None or cpus_per_replica <= 0 or desired <= current:
        return desired
    more = math.floor((capacity.headroom_cpus() + _CPU_EPS) / cpus_per_replica)
    return min(desired, float(max(0, current) + more))


@dataclass(frozen=True)
class BacklogReport:
    """The claimable backlog as the Dispatcher measured it."""

    claimable: int
    running: int
    per_tenant: dict[str, int] = field(default_factory=dict)
    measured_at: float = field(default_factory=time.time)
    # the Dispatcher is holding back for intake (pipeline.dispatch.intake_priority): pools hold too
    intake_priority: bool = False

    def is_fresh(
        self, now: float | None = None, max_age_s: float = BACKLOG_REPORT_MAX_AGE_S
    ) -> bool:
        return ((now if now is not None else time.time()) - self.measured_at) <= max_age_s

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "claimable": self.claimable,
                "running": self.running,
                "per_tenant": self.per_tenant,
                "measured_at": self.measured_at,
                "intake_priority": self.intake_priority,
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> BacklogReport | None:
        """None for anything unreadable: a bad report must never break autoscaling."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return cls(
                claimable=max(0, int(data["claimable"])),
                running=max(0, int(data["running"])),
                per_tenant={str(k): int(v) for k, v in data.get("per_tenant", {}).items()},
                measured_at=float(data["measured_at"]),
                intake_priority=bool(data.get("intake_priority", False)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

"""Do the Serve replicas at their maximum fit the worker pods at theirs?

Ray places each replica whole on one node: a replica reserving 1 CPU cannot use half a CPU
left on one pod and half on another. Comparing sums of CPUs misses that: two 4-CPU pods
offer 8 CPUs, yet three replicas of 3 CPUs (9 > 8 is caught) or five replicas of 1.5 CPUs
(7.5 <= 8, but only two fit per pod, so the fifth never starts) are what an operator meets as
a replica pending forever. This module packs the replicas onto the pods first-fit decreasing
(largest replica first, each into the first pod with room), honouring a deployment's
``max_replicas_per_node``. Replicas first-fit decreasing cannot place are reported; a packing
it finds is a real placement, so a render that passes can be scheduled at full scale.

The head pod takes no replicas (its ``rayStartParams`` set ``num-cpus: "0"``), so only worker
groups count. A pod's CPUs are what KubeRay tells Ray: ``rayStartParams["num-cpus"]`` if set,
else the Ray container's CPU limit, else its request, as a whole number rounded *up*
(KubeRay's ``generateRayStartCommand`` writes ``strconv.FormatInt(cpu.Value(), 10)``, and a
Kubernetes ``Quantity.Value()`` rounds up: a ``1500m`` pod advertises 2 CPUs to Ray).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kuberay.problems import Problem

# Serve's own maximum for num_replicas="auto" (the replicas a deployment may reach).
_AUTO_MAX_REPLICAS = 100
_EPS = 1e-9


@dataclass(frozen=True)
class ReplicaDemand:
    """One deployment at its maximum: how many replicas, the CPUs each, at most how many on a
    node (None: no limit)."""

    deployment: str
    replicas: int
    cpus: float
    per_node: int | None = None


@dataclass
class _Pod:
    free: float
    held: dict[str, int] = field(default_factory=dict)


def advertised_cpus(quantity: str | float) -> int:
    """The CPUs Ray is started with for a Kubernetes CPU quantity (``"500m"``, ``"2"``, 1.5)."""
    text = str(quantity)
    cpus = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return math.ceil(cpus - 1e-9)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def worker_pod_cpus(cluster_spec: Mapping[str, Any]) -> list[float] | None:
    """CPUs of every worker pod a RayCluster spec can have (``maxReplicas`` per group when the
    in-tree autoscaler is on, else ``replicas``); None when a group's CPUs are not stated (or
    the spec is malformed: the schema check reports that)."""
    autoscaling = bool(cluster_spec.get("enableInTreeAutoscaling"))
    groups = cluster_spec.get("workerGroupSpecs") or []
    if not isinstance(groups, list):
        return None
    pods: list[float] = []
    for group in groups:
        group = _mapping(group)
        count = group.get("maxReplicas" if autoscaling else "replicas", 1)
        containers = _mapping(_mapping(group.get("template")).get("spec")).get("containers")
        first = _mapping(containers[0]) if isinstance(containers, list) and containers else {}
        resources = _mapping(first.get("resources"))
        raw = (
            _mapping(group.get("rayStartParams")).get("num-cpus")
            or _mapping(resources.get("limits")).get("cpu")
            or _mapping(resources.get("requests")).get("cpu")
        )
        if raw is None or isinstance(count, bool) or not isinstance(count, int):
            return None
        try:
            pods += [float(advertised_cpus(raw))] * count
        except (TypeError, ValueError):
            return None
    return pods


def num_cpus_problems(cluster_spec: Mapping[str, Any], base: str) -> list[Problem]:
    """``rayStartParams.num-cpus`` is a free string in the CRD, but ``ray start --num-cpus``
    takes a number: anything else leaves the pods crash-looping."""
    groups = [("headGroupSpec", _mapping(cluster_spec.get("headGroupSpec")))]
    workers = cluster_spec.get("workerGroupSpecs")
    if isinstance(workers, list):
        groups += [(f"workerGroupSpecs[{i}]", _mapping(g)) for i, g in enumerate(workers)]
    problems = []
    for where, group in groups:
        raw = _mapping(group.get("rayStartParams")).get("num-cpus")
        try:
            if raw is not None:
                advertised_cpus(raw)
        except (TypeError, ValueError):
            problems.append(
                Problem(
                    f"{base}.{where}.rayStartParams.num-cpus",
                    f"'{raw}' is not a number of CPUs (`ray start --num-cpus` would refuse it)",
                )
            )
    return problems


def capacity_problems(
    serve_config: Mapping[str, Any], pod_cpus: list[float], path: str
) -> list[Problem]:
    """Every Serve replica at max_replicas must find a worker pod with room, each whole on one
    pod; otherwise the replicas Ray cannot place stay pending for ever."""
    demands = replica_demands(serve_config)
    demand, supply = _total_cpus(demands), sum(pod_cpus)
    if demand > supply + _EPS:
        message = (
            f"at maxReplicas the worker groups offer {supply:g} CPUs, but the Serve "
            f"deployments reserve {demand:g} CPUs at their max_replicas; raise maxReplicas "
            f"or worker CPUs, or lower the pools' max_replicas"
        )
        return [Problem(path, message)]
    unplaced = unplaced_replicas(demands, pod_cpus)
    if not unplaced:
        return []
    cpus_of = {d.deployment: d.cpus for d in demands}
    which = ", ".join(
        f"{n} of {name} ({cpus_of[name]:g} CPU each)" for name, n in sorted(unplaced.items())
    )
    message = (
        f"at maxReplicas the worker pods offer {supply:g} CPUs in total (enough for the "
        f"{demand:g} reserved), but Ray places each replica whole on one pod and {which} would "
        f"find no pod with room; use worker pods with more CPUs, raise maxReplicas, or make "
        f"the replicas' num_cpus divide the pod's CPUs"
    )
    return [Problem(path, message)]


def replica_demands(config: Mapping[str, Any]) -> list[ReplicaDemand]:
    """Each deployment of a Serve config (``applications[].deployments[]``) at max replicas."""
    demands: list[ReplicaDemand] = []
    apps = config.get("applications")
    for app in apps if isinstance(apps, list) else []:
        deployments = _mapping(app).get("deployments")
        for dep in deployments if isinstance(deployments, list) else []:
            dep = _mapping(dep)
            autoscaling = dep.get("autoscaling_config")
            if isinstance(autoscaling, Mapping):
                replicas = autoscaling.get("max_replicas", 1)
            else:
                replicas = dep.get("num_replicas", 1)
            if not isinstance(replicas, int | float):  # "auto"
                replicas = _AUTO_MAX_REPLICAS
            cpus = _mapping(dep.get("ray_actor_options")).get("num_cpus", 1)
            if isinstance(cpus, bool) or not isinstance(cpus, int | float):
                continue  # not a number: the Serve schema check reports it
            per_node = dep.get("max_replicas_per_node")
            demands.append(
                ReplicaDemand(
                    deployment=str(dep.get("name", "?")),
                    replicas=int(replicas),
                    cpus=float(cpus),
                    per_node=int(per_node) if isinstance(per_node, int) else None,
                )
            )
    return demands


def replica_cpu_demand(config: Mapping[str, Any]) -> float:
    """CPUs the Serve replicas reserve when every deployment runs at its maximum."""
    return _total_cpus(replica_demands(config))


def _total_cpus(demands: list[ReplicaDemand]) -> float:
    return sum(d.replicas * d.cpus for d in demands)


def unplaced_replicas(demands: list[ReplicaDemand], pod_cpus: list[float]) -> dict[str, int]:
    """Pack the replicas onto pods with ``pod_cpus`` free each, first-fit decreasing;
    returns ``{deployment: replicas that found no pod}`` (empty when everything fits)."""
    pods = [_Pod(free=c) for c in pod_cpus]
    unplaced: dict[str, int] = {}
    # Largest replicas first; the name breaks ties so the packing is deterministic.
    for demand in sorted(demands, key=lambda d: (-d.cpus, d.deployment)):
        for _ in range(demand.replicas):
            pod = next((p for p in pods if _fits(p, demand)), None)
            if pod is None:
                unplaced[demand.deployment] = unplaced.get(demand.deployment, 0) + 1
                continue
            pod.free -= demand.cpus
            pod.held[demand.deployment] = pod.held.get(demand.deployment, 0) + 1
    return unplaced


def _fits(pod: _Pod, demand: ReplicaDemand) -> bool:
    if demand.cpus > pod.free + _EPS:
        return False
    return demand.per_node is None or pod.held.get(demand.deployment, 0) < demand.per_node

"""Every Serve deployment's options, in one place.

`serve run`, the app builder and the KubeRay renderer all read this module, so the pool sizes
and back-pressure limits a test exercises are the ones production runs. Plain data: no Ray
import at load time (``deployment_of`` imports it when called), so the renderer and docs can
load it anywhere.

Why these numbers (2-core reference machine; docs/architecture/scaling.md):
- Enhancer: a job spends almost all its time awaiting I/O (LLM ~2 s, SDP, Postgres), so one
  replica holds many jobs (``max_ongoing_requests`` 256) and scales on ongoing+queued requests
  per replica (``target_ongoing_requests`` 192): fewer, fuller replicas cost less CPU per job
  than many half-empty ones. The dispatcher caps what it hands out, so the queue cap only
  guards against a runaway caller.
- Enhancer, ContextGatherer, Synthesizer scale on the durable backlog (claimable jobs in
  PostgreSQL) plus requests in flight, through ``BACKLOG_POLICY`` (actors/backlog_policy.py):
  Serve alone sees only what the dispatcher has already handed out.
- ContextGatherer: short Postgres queries; 128 concurrent per replica.
- Synthesizer: holds one LLM call per request; async, so 256 in flight per replica.
- Logical CPUs: each replica reserves what one replica of its pool was measured to use at the
  throughput one replica of each pool sustains on the 2-core reference node
  (docs/architecture/scaling.md: the per-process CPU split of ``benchmarks.pipeline``), so Ray
  places a replica only where a core has room for it and, on KubeRay, the autoscaler adds a pod
  when none has. One replica of every pool fits a ``REFERENCE_NODE_CPUS`` node with room to
  spare for Ray's own processes.
- Max replicas follow the cluster (``sized_pool_options``): every autoscaled pool scales by the
  same whole factor of its min_replicas, the largest at which every pool at max_replicas still
  fits the cluster's CPUs together (on one node: ``node_scale``; on KubeRay the renderer packs
  them onto the worker pods at maxReplicas). On a 2-core machine that factor is 1: more
  replicas on the same two cores cannot do more work, only start more processes.
- Graceful shutdown exceeds the longest LLM call (timeout 60 s x retries) so a rolling update
  drains instead of killing synthesis mid-call.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.serve import Deployment

APP_NAME = "ai_agents"
ROUTE_PREFIX = "/"
IMPORT_PATH = "actors.app:app"

INGRESS = "Ingress"
DISPATCHER = "Dispatcher"
ENHANCER = "Enhancer"
CONTEXT_GATHERER = "ContextGatherer"
SYNTHESIZER = "Synthesizer"

# The pools that scale on the durable backlog (claimable jobs in PostgreSQL) plus requests in
# flight, through this Serve autoscaling policy (actors/backlog_policy.py).
BACKLOG_POLICY = {"policy_function": "actors.backlog_policy:BacklogPolicy"}
# The Ingress: the same policy without the backlog (in-flight requests, within capacity).
INGRESS_POLICY = {
    "policy_function": "actors.backlog_policy:BacklogPolicy",
    "policy_kwargs": {"backlog": False},
}

LLM_CALL_TIMEOUT_S = 60.0
# The smallest node the whole application must fit on, every pool at min_replicas.
REFERENCE_NODE_CPUS = 2.0
# The most replicas sizing gives a pool (min_replicas x this), whatever the cluster's size.
MAX_SCALE = 16

_POOL_OPTIONS: dict[str, dict[str, Any]] = {
    INGRESS: {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 1,
            "target_ongoing_requests": 64,
            "upscale_delay_s": 10,
            "downscale_delay_s": 300,
            "policy": INGRESS_POLICY,
        },
        "max_ongoing_requests": 256,
        "max_queued_requests": 1024,
        "graceful_shutdown_timeout_s": 15,
        "ray_actor_options": {"num_cpus": 0.25},
    },
    DISPATCHER: {
        "num_replicas": 1,
        "max_ongoing_requests": 16,
        "graceful_shutdown_timeout_s": 10,
        "health_check_period_s": 5,
        "ray_actor_options": {"num_cpus": 0.2},
    },
    ENHANCER: {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 1,
            "target_ongoing_requests": 192,
            "upscale_delay_s": 5,
            "downscale_delay_s": 120,
            "policy": BACKLOG_POLICY,
        },
        "max_ongoing_requests": 256,
        "max_queued_requests": 512,
        "graceful_shutdown_timeout_s": 200,
        "ray_actor_options": {"num_cpus": 0.5},
    },
    CONTEXT_GATHERER: {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 1,
            "target_ongoing_requests": 96,
            "upscale_delay_s": 5,
            "downscale_delay_s": 120,
            "policy": BACKLOG_POLICY,
        },
        "max_ongoing_requests": 128,
        "max_queued_requests": 512,
        "graceful_shutdown_timeout_s": 30,
        "ray_actor_options": {"num_cpus": 0.25},
    },
    SYNTHESIZER: {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 1,
            "target_ongoing_requests": 192,
            "upscale_delay_s": 5,
            "downscale_delay_s": 120,
            "policy": BACKLOG_POLICY,
        },
        "max_ongoing_requests": 256,
        "max_queued_requests": 512,
        "graceful_shutdown_timeout_s": 200,
        "ray_actor_options": {"num_cpus": 0.3},
    },
}


def pool_options(name: str) -> dict[str, Any]:
    """A deep copy, so a caller that tweaks options cannot change another's."""
    return all_pool_options()[name]


def all_pool_options() -> dict[str, dict[str, Any]]:
    """Every pool's options as declared (max_replicas for the reference node), each autoscaling
    policy told its replica's CPUs."""
    return with_policy_cpus(copy.deepcopy(_POOL_OPTIONS))


def replica_cpus(options: dict[str, Any]) -> float:
    """The logical CPUs one replica reserves (Ray's default for an actor option left out: 1)."""
    return float((options.get("ray_actor_options") or {}).get("num_cpus", 1))


def with_policy_cpus(
    pools: dict[str, dict[str, Any]], max_cluster_cpus: float | None = None
) -> dict[str, dict[str, Any]]:
    """Pass each pool's ``num_cpus`` (and the cluster's CPUs at its largest, where it can add
    nodes) to its autoscaling policy, which asks only for replicas that can start."""
    for options in pools.values():
        autoscaling = options.get("autoscaling_config") or {}
        policy = autoscaling.get("policy")
        if isinstance(policy, dict):
            kwargs = dict(policy.get("policy_kwargs") or {})
            kwargs["cpus_per_replica"] = replica_cpus(options)
            if max_cluster_cpus is not None:
                kwargs["max_cluster_cpus"] = float(max_cluster_cpus)
            # a new dict: pools may share one policy dict (a deep copy keeps that sharing)
            autoscaling["policy"] = {**policy, "policy_kwargs": kwargs}
    return pools


def sized_pool_options(
    scale: int, max_cluster_cpus: float | None = None
) -> dict[str, dict[str, Any]]:
    """Every pool's options with ``max_replicas = scale x min_replicas`` for the autoscaled
    pools (``scale`` from ``node_scale`` or the KubeRay renderer)."""
    pools = all_pool_options()
    for options in pools.values():
        autoscaling = options.get("autoscaling_config")
        if autoscaling:
            autoscaling["max_replicas"] = max(1, scale) * int(autoscaling["min_replicas"])
    return with_policy_cpus(pools, max_cluster_cpus)


def cpus_at_scale(scale: int) -> float:
    """CPUs every pool reserves together at ``max_replicas`` for ``scale``."""
    total = 0.0
    for options in _POOL_OPTIONS.values():
        autoscaling = options.get("autoscaling_config")
        replicas = max(1, scale) * autoscaling["min_replicas"] if autoscaling else 1
        total += int(options.get("num_replicas", replicas)) * replica_cpus(options)
    return total


def node_scale(node_cpus: float) -> int:
    """The largest scale (1..``MAX_SCALE``) at which every pool at max_replicas fits one node
    of ``node_cpus`` logical CPUs; 1 when even that does not fit (min_replicas are a floor)."""
    scale = 1
    while scale < MAX_SCALE and cpus_at_scale(scale + 1) <= node_cpus + 1e-9:
        scale += 1
    return scale


def deployment_of(decorated: object) -> Deployment:
    """A ``@serve.deployment`` class as what the decorator made of it, a ``Deployment`` to
    ``bind`` or ``options``: mypy does not apply class decorators (python/mypy#3135)."""
    from ray.serve import Deployment

    if not isinstance(decorated, Deployment):
        raise TypeError(f"{decorated!r} is not a Serve deployment")
    return decorated

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
- Logical CPUs: the I/O pools reserve 0.05 CPU per replica, so every pool at its max_replicas
  fits on a ``REFERENCE_NODE_CPUS`` node (a test holds this). With larger reservations a
  scaled-out Enhancer pool can take every CPU slot of the node and leave the other pools'
  replicas unplaceable. On KubeRay, production values may reserve more per replica so the Ray
  autoscaler adds pods.
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

LLM_CALL_TIMEOUT_S = 60.0
# The smallest node the whole application must fit on with every pool at max_replicas.
REFERENCE_NODE_CPUS = 2.0

_POOL_OPTIONS: dict[str, dict[str, Any]] = {
    INGRESS: {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 4,
            "target_ongoing_requests": 64,
            "upscale_delay_s": 10,
            "downscale_delay_s": 300,
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
        "ray_actor_options": {"num_cpus": 0.1},
    },
    ENHANCER: {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 4,
            "target_ongoing_requests": 192,
            "upscale_delay_s": 5,
            "downscale_delay_s": 120,
            "policy": BACKLOG_POLICY,
        },
        "max_ongoing_requests": 256,
        "max_queued_requests": 512,
        "graceful_shutdown_timeout_s": 200,
        "ray_actor_options": {"num_cpus": 0.05},
    },
    CONTEXT_GATHERER: {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 4,
            "target_ongoing_requests": 96,
            "upscale_delay_s": 5,
            "downscale_delay_s": 120,
            "policy": BACKLOG_POLICY,
        },
        "max_ongoing_requests": 128,
        "max_queued_requests": 512,
        "graceful_shutdown_timeout_s": 30,
        "ray_actor_options": {"num_cpus": 0.05},
    },
    SYNTHESIZER: {
        "autoscaling_config": {
            "min_replicas": 1,
            "max_replicas": 4,
            "target_ongoing_requests": 192,
            "upscale_delay_s": 5,
            "downscale_delay_s": 120,
            "policy": BACKLOG_POLICY,
        },
        "max_ongoing_requests": 256,
        "max_queued_requests": 512,
        "graceful_shutdown_timeout_s": 200,
        "ray_actor_options": {"num_cpus": 0.05},
    },
}


def pool_options(name: str) -> dict[str, Any]:
    """A deep copy, so a caller that tweaks options cannot change another's."""
    return copy.deepcopy(_POOL_OPTIONS[name])


def all_pool_options() -> dict[str, dict[str, Any]]:
    return copy.deepcopy(_POOL_OPTIONS)


def deployment_of(decorated: object) -> Deployment:
    """A ``@serve.deployment`` class as what the decorator made of it, a ``Deployment`` to
    ``bind`` or ``options``: mypy does not apply class decorators (python/mypy#3135)."""
    from ray.serve import Deployment

    if not isinstance(decorated, Deployment):
        raise TypeError(f"{decorated!r} is not a Serve deployment")
    return decorated

"""Serve graphs the benchmarks deploy.

Intake:

``ingress``: the product ``Ingress`` deployment bound to ``IdleDispatcher`` — a stand-in that
answers ``status()`` (so ``/api/v1/ready`` works) and claims nothing, so the run measures intake
alone: signature check, tenant lookup, INSERT + NOTIFY, commit, 202. Jobs stay ``queued``.
``full``: the product graph (``actors.app.build_app``), pipeline running.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from actors.deployment_options import DISPATCHER, deployment_of
from actors.ingress import IngressDeployment


@serve.deployment(name=DISPATCHER, num_replicas=1, ray_actor_options={"num_cpus": 0.1})
class IdleDispatcher:
    def status(self) -> dict[str, Any]:
        return {"healthy": True, "idle": True, "inflight": 0}


class _FloorIngress:
    """The intake floor (``benchmarks.rig.intake_floor.IntakeFloor``, a bare ASGI callable) as the
    Serve ingress: what any app costs once Serve, direct ingress and HAProxy carry it, so the
    product can be told apart from the platform it runs on. Secrets and the owner URL come
    from the environment the benchmark starts Ray with."""

    def __serve_build_asgi_app__(self) -> Any:
        import json
        import os

        from benchmarks.rig.intake_floor import IntakeFloor

        with open(os.environ["AI_AGENTS_FLOOR_TENANTS_FILE"]) as handle:
            secrets = {t["id"]: t["secret"].encode() for t in json.load(handle)}
        return IntakeFloor(os.environ["AI_AGENTS_FLOOR_DATABASE_URL"], secrets)


# The product Ingress's options (replica bounds, max_ongoing_requests: HAProxy's maxconn per
# replica), so only the app differs.
FloorIngress = deployment_of(IngressDeployment).options(
    func_or_class=serve.ingress()(_FloorIngress)
)


def ingress_options(replicas: int = 0, max_ongoing: int = 0) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if replicas:
        options.update(num_replicas=replicas, autoscaling_config=None)
    if max_ongoing:
        options["max_ongoing_requests"] = max_ongoing
    return options


def build_intake_app(
    graph: str = "ingress", *, replicas: int = 0, max_ongoing: int = 0
) -> Application:
    from actors.app import build_app

    options = ingress_options(replicas, max_ongoing)
    if graph == "floor":
        return FloorIngress.options(**options).bind()
    if graph == "full":
        if not options:
            return build_app()
        from actors.context_gatherer import ContextGathererDeployment
        from actors.dispatcher import DispatcherDeployment
        from actors.enhancer import EnhancerDeployment
        from actors.synthesizer import SynthesizerDeployment

        enhancer = deployment_of(EnhancerDeployment).bind(
            deployment_of(ContextGathererDeployment).bind(),
            deployment_of(SynthesizerDeployment).bind(),
        )
        dispatcher = deployment_of(DispatcherDeployment).bind(enhancer)
        return deployment_of(IngressDeployment).options(**options).bind(dispatcher)
    ingress = deployment_of(IngressDeployment)
    return (ingress.options(**options) if options else ingress).bind(
        deployment_of(IdleDispatcher).bind()
    )


def build_pipeline_app(overrides: dict[str, dict[str, Any]] | None = None) -> Application:
    """The product graph with per-deployment option overrides (``Deployment.options``), so a
    benchmark can try pool settings without editing ``actors/deployment_options.py``."""
    from actors.context_gatherer import ContextGathererDeployment
    from actors.dispatcher import DispatcherDeployment
    from actors.enhancer import EnhancerDeployment
    from actors.synthesizer import SynthesizerDeployment

    overrides = overrides or {}

    def opt(deployment: Any) -> Any:
        extra = overrides.get(deployment.name)
        return deployment.options(**extra) if extra else deployment

    enhancer = opt(EnhancerDeployment).bind(
        opt(ContextGathererDeployment).bind(), opt(SynthesizerDeployment).bind()
    )
    return opt(IngressDeployment).bind(opt(DispatcherDeployment).bind(enhancer))

"""The Serve graph the intake benchmark deploys.

``ingress``: the product ``Ingress`` deployment bound to ``IdleDispatcher`` — a stand-in that
answers ``status()`` (so ``/api/v1/ready`` works) and claims nothing, so the run measures intake
alone: signature check, tenant lookup, INSERT + NOTIFY, commit, 202. Jobs stay ``queued``.
``full``: the product graph (``serve_app.app_builder.build_app``), pipeline running.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from actors.pool_options import DISPATCHER


@serve.deployment(name=DISPATCHER, num_replicas=1, ray_actor_options={"num_cpus": 0.1})
class IdleDispatcher:
    def status(self) -> dict[str, Any]:
        return {"healthy": True, "idle": True, "inflight": 0}


def ingress_options(replicas: int = 0, max_ongoing: int = 0) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if replicas:
        options.update(num_replicas=replicas, autoscaling_config=None)
    if max_ongoing:
        options["max_ongoing_requests"] = max_ongoing
    return options


def build_intake_app(graph: str = "ingress", *, replicas: int = 0,
                     max_ongoing: int = 0) -> Application:
    from serve_app.app_builder import build_app
    from serve_app.ingress import Ingress

    options = ingress_options(replicas, max_ongoing)
    if graph == "full":
        if not options:
            return build_app()
        from actors.context_gatherer import ContextGatherer
        from actors.dispatcher import Dispatcher
        from actors.enhancer import Enhancer
        from actors.synthesizer import Synthesizer

        enhancer = Enhancer.bind(ContextGatherer.bind(), Synthesizer.bind())
        return Ingress.options(**options).bind(Dispatcher.bind(enhancer))
    ingress = Ingress.options(**options) if options else Ingress
    return ingress.bind(IdleDispatcher.bind())

"""Binds the deployment graph. ``app`` is the import path Serve configs use
(``actors.app:app``), for ``serve run``, ``serve deploy`` and the RayService."""

from __future__ import annotations

from typing import Any

from ray.serve import Application, Deployment

from actors.context_gatherer import ContextGathererDeployment
from actors.deployment_options import deployment_of, node_scale, sized_pool_options
from actors.dispatcher import DispatcherDeployment
from actors.enhancer import EnhancerDeployment
from actors.ingress import IngressDeployment
from actors.synthesizer import SynthesizerDeployment


def build_app(args: dict[str, Any] | None = None, *, node_cpus: float | None = None) -> Application:
    """Ingress → Dispatcher → Enhancer → (ContextGatherer, Synthesizer).

    ``node_cpus``: the logical CPUs of the one node the application runs on (the embedded
    ``ai-agents serve``/``demo``); the pools' max_replicas are sized to it
    (``deployment_options.node_scale``). None: the options as declared, or as a Serve config
    (the RayService's, sized by ``kuberay render``) sets them."""
    pools = sized_pool_options(node_scale(node_cpus)) if node_cpus else None

    def sized(decorated: object) -> Deployment:
        deployment = deployment_of(decorated)
        return deployment.options(**pools[deployment.name]) if pools else deployment

    enhancer = sized(EnhancerDeployment).bind(
        sized(ContextGathererDeployment).bind(), sized(SynthesizerDeployment).bind()
    )
    return sized(IngressDeployment).bind(sized(DispatcherDeployment).bind(enhancer))


app = build_app()

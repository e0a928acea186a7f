"""Binds the deployment graph. ``app`` is the import path Serve configs use
(``actors.app:app``), for ``serve run``, ``serve deploy`` and the RayService."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from actors.context_gatherer import ContextGathererDeployment
from actors.deployment_options import deployment_of
from actors.dispatcher import DispatcherDeployment
from actors.enhancer import EnhancerDeployment
from actors.ingress import IngressDeployment
from actors.synthesizer import SynthesizerDeployment


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Ingress → Dispatcher → Enhancer → (ContextGatherer, Synthesizer)."""
    enhancer = deployment_of(EnhancerDeployment).bind(
        deployment_of(ContextGathererDeployment).bind(), deployment_of(SynthesizerDeployment).bind()
    )
    return deployment_of(IngressDeployment).bind(deployment_of(DispatcherDeployment).bind(enhancer))


app = build_app()

"""Binds the deployment graph. ``app`` is the import path Serve configs use
(``actors.app:app``), for ``serve run``, ``serve deploy`` and the RayService."""

from __future__ import annotations

from typing import Any

from ray.serve import Application, Deployment

from actors.context_gatherer import ContextGathererDeployment
from actors.dispatcher import DispatcherDeployment
from actors.enhancer import EnhancerDeployment
from actors.ingress import IngressDeployment
from actors.synthesizer import SynthesizerDeployment


def deployment_of(decorated: object) -> Deployment:
    """A ``@serve.deployment`` class as what the decorator made of it, a ``Deployment``: mypy
    does not apply class decorators (python/mypy#3135), so it still sees the class."""
    if not isinstance(decorated, Deployment):
        raise TypeError(f"{decorated!r} is not a Serve deployment")
    return decorated


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Ingress → Dispatcher → Enhancer → (ContextGatherer, Synthesizer)."""
    enhancer = deployment_of(EnhancerDeployment).bind(
        deployment_of(ContextGathererDeployment).bind(), deployment_of(SynthesizerDeployment).bind()
    )
    return deployment_of(IngressDeployment).bind(deployment_of(DispatcherDeployment).bind(enhancer))


app = build_app()

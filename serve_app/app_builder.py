"""Binds the deployment graph. ``app`` is the import path Serve configs use
(``serve_app.app_builder:app``), for ``serve run``, ``serve deploy`` and the RayService."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from actors.context_gatherer import ContextGathererDeployment
from actors.dispatcher import DispatcherDeployment
from actors.enhancer import EnhancerDeployment
from actors.synthesizer import SynthesizerDeployment
from serve_app.ingress import Ingress


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Ingress → Dispatcher → Enhancer → (ContextGatherer, Synthesizer)."""
    enhancer = EnhancerDeployment.bind(
        ContextGathererDeployment.bind(), SynthesizerDeployment.bind()
    )
    return Ingress.bind(DispatcherDeployment.bind(enhancer))


app = build_app()

"""Binds the deployment graph. ``app`` is the import path Serve configs use
(``serve_app.app_builder:app``), for ``serve run``, ``serve deploy`` and the RayService."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from actors.context_gatherer import ContextGatherer
from actors.dispatcher import Dispatcher
from actors.enhancer import Enhancer
from actors.synthesizer import Synthesizer
from serve_app.ingress import Ingress


def build_app(args: dict[str, Any] | None = None) -> Application:
    """Ingress → Dispatcher → Enhancer → (ContextGatherer, Synthesizer)."""
    enhancer = Enhancer.bind(ContextGatherer.bind(), Synthesizer.bind())
    return Ingress.bind(Dispatcher.bind(enhancer))


app = build_app()

"""The Ingress's logic without Ray: the HTTP app and everything its routes share, one per replica.

``actors/ingress.py: IngressDeployment`` serves ``app`` inside Ray Serve (adding the readiness of
the pools, which only Ray can see); the benchmarks serve the same app under bare uvicorn and the
tests over ASGI, so every way in runs the same routes, guards and state.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from core.settings import Settings
from serve_app.api import create_api
from serve_app.api_state import ApiState


class Ingress:
    def __init__(self, settings: Settings, **state_options: Any) -> None:
        """``state_options``: what ``ApiState`` takes besides the settings (``metrics``,
        ``readiness_probe``, ...)."""
        self.state = ApiState.from_settings(settings, **state_options)
        self.app: FastAPI = create_api(self.state)

    async def close(self) -> None:
        await self.state.close()

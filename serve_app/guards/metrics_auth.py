"""Who may read ``GET /metrics``: Prometheus, holding the metrics token.

The database-derived gauges carry a ``tenant`` label, so an open ``/metrics`` would list every
tenant id (disabled ones included) to anyone who could reach the HTTP port. The route is on
the Serve port (so KubeRay's ServiceMonitor scrapes the Serve service) but answers only
``Authorization: Bearer <AI_AGENTS_METRICS_TOKEN>``, the way Prometheus' ``authorization``
scrape setting sends it. Chosen over a separate metrics port
because the gauges are computed inside the Ingress replicas, which share one HTTP port with
Serve's proxy (or HAProxy) and can be several on a node; a second listener per replica would
collide or leave scrape targets empty on pods without one. A token of its own (not the admin
token) means the Prometheus server holds read-only credentials. Without a configured token
the route refuses every request: metrics are never public by accident.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from serve_app.deps import State


def require_metrics_token(request: Request, state: State) -> None:
    expected = state.settings.metrics_token
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, "Missing bearer token (the metrics token)", headers={"WWW-Authenticate": "Bearer"}
        )
    if expected is None or not hmac.compare_digest(
        token.strip().encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(403, "Invalid token")


MetricsReader = Annotated[None, Depends(require_metrics_token)]

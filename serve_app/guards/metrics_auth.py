"""Who may read ``GET /metrics`` (Prometheus, holding the metrics token) and the component
details of ``GET /api/v1/ready`` (the metrics or the admin token).

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

``/api/v1/ready`` stays open, because a load balancer's health check has no token, but without
one it says only ready or not (200/503): its components name dispatcher internals and tenants
whose claim failed, which only operators (the metrics or the admin token) see.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from pipeline.tenancy.credential_cipher import hash_token
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


def operator_token_presented(request: Request, state: State) -> bool:
    """True when the request carries the metrics token or the admin token (constant-time
    comparisons); no token, another one or a malformed header is False, never an error."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    metrics = state.settings.metrics_token
    metrics_ok = metrics is not None and hmac.compare_digest(
        token.encode(), metrics.get_secret_value().encode()
    )
    admin = state.admin_token_hash
    admin_ok = admin is not None and hmac.compare_digest(hash_token(token), admin)
    return metrics_ok or admin_ok

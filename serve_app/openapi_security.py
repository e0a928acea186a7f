"""Security schemes in the OpenAPI document, so `/docs` has a working Authorize button and
generated clients know how each route authenticates.

The tenant and admin bearer schemes come from the dependencies themselves (`serve_app.deps`
declares them with FastAPI's ``HTTPBearer``). The webhook routes read their headers from the
raw request (the signature covers the exact body bytes), so their schemes are added here to
every ``/webhook/`` operation: either the HMAC pair (``X-Signature`` + ``X-Timestamp``) or the
static ``X-Webhook-Token``, whichever the tenant's ``webhook_auth`` mode is. ``/metrics`` needs
the metrics token; ``/api/v1/ready`` takes no token (a load balancer's check) or, for its
component details, the metrics or the admin token.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from core.webhook_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, TOKEN_HEADER

WEBHOOK_SCHEMES: dict[str, dict[str, Any]] = {
    "WebhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": "HMAC mode: `sha256=` + hex HMAC-SHA256 of `<X-Timestamp>.<raw body>` "
        "with the tenant's webhook secret (base64 of the digest also accepted).",
    },
    "WebhookTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": TIMESTAMP_HEADER,
        "description": "HMAC mode: Unix seconds when signed; rejected beyond 300 s of skew.",
    },
    "WebhookToken": {
        "type": "apiKey",
        "in": "header",
        "name": TOKEN_HEADER,
        "description": "Token mode: the tenant's webhook secret as a static header "
        "(for SDP, which cannot sign).",
    },
}
METRICS_SCHEME: dict[str, dict[str, Any]] = {
    "MetricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The metrics token (AI_AGENTS_METRICS_TOKEN), read-only.",
    }
}
OPERATOR_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "/metrics": [{"MetricsToken": []}],
    "/api/v1/ready": [{}, {"MetricsToken": []}, {"AdminToken": []}],
}
WEBHOOK_SECURITY: list[dict[str, list[str]]] = [
    {"WebhookSignature": [], "WebhookTimestamp": []},
    {"WebhookToken": []},
]


def install_openapi_security(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that adds the webhook schemes (built once, cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {})
            components.setdefault("securitySchemes", {}).update(
                {**WEBHOOK_SCHEMES, **METRICS_SCHEME}
            )
            for path, operations in schema.get("paths", {}).items():
                for operation in operations.values():
                    if path.startswith("/webhook/"):
                        operation["security"] = WEBHOOK_SECURITY
                    elif path in OPERATOR_SECURITY:
                        operation["security"] = OPERATOR_SECURITY[path]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

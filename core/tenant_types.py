"""The literal types that describe a tenant's ServiceDesk Plus set-up, defined once.

The tenant configuration, the SDP client, the admin API, the CLI and the SDP simulator all
speak of the same editions and webhook modes; they import them from here (the core has no Ray
and no simulator, so every layer may).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["RETENTION_DAYS_MAX", "RETENTION_DAYS_MIN", "Edition", "WebhookAuthMode"]

# Which SDP a tenant runs: on-premises (technician API key) or SDP Cloud (Zoho OAuth token,
# portal in the URL, a stricter rate limit).
Edition = Literal["onprem", "cloud"]
# How the tenant's SDP authenticates its webhooks: a static `X-Webhook-Token` header, or an
# HMAC signature over the raw body (see core.webhook_auth).
WebhookAuthMode = Literal["hmac", "token"]

# Bounds of every retention setting, service-wide (AI_AGENTS_RETENTION_DAYS_*) and per tenant
# (retention_days_*), in days. The floor (86.4 s) lets a soak test reach its bound within an
# hour; a job kept shorter than SDP's redelivery window can no longer recognise a repeated
# delivery. The ceiling is ten years.
RETENTION_DAYS_MIN = 0.001
RETENTION_DAYS_MAX = 3650.0

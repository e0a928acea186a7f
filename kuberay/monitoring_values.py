"""Values of the monitoring integrations added around the manifests (Alertmanager receivers,
the Ray dashboard's Grafana/Prometheus), kept apart from values.py to keep that file readable.
Same strictness as every other values model: unknown keys fail, keys are camelCase."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_default=True
    )


class Alerting(_Model):
    """Alertmanager receivers (kuberay/manifests/alerting.py): critical → PagerDuty, warning →
    Slack, every alert → an e-mail digest. Credentials only as keys of the Secret
    ``secret_name``."""

    secret_name: str = "ai-agents-alerting"
    slack_channel: str = "#ai-agents-alerts"
    email_to: str = "ai-agents-oncall@example.com"
    email_from: str = "alertmanager@example.com"
    smarthost: str = "smtp.example.com:587"
    smtp_username: str = "alertmanager"


class RayDashboard(_Model):
    """Where the head pod's Ray dashboard finds Grafana and Prometheus (ray_dashboards.py)."""

    grafana_host: str | None = None
    grafana_iframe_host: str | None = None
    prometheus_host: str | None = None
    prometheus_datasource: str | None = None

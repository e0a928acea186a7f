"""Alertmanager routing for the alerts in kuberay/alerts.yaml (docs/operations/kuberay.md):
critical → PagerDuty, warning → Slack, and every alert also into an e-mail digest; while
``DatabaseConnectionIssues`` or ``ServeApplicationNotRunning`` fires, the alerts that are only
its symptoms are inhibited, in the same namespace only.

One route tree, written two ways by ``ai-agents kuberay render`` (``OUT/alertmanager/``):
an ``AlertmanagerConfig`` for the Prometheus Operator (credentials as Secret key references)
and a plain ``alertmanager.yml`` for an Alertmanager without the operator (credentials as
``*_file`` paths where the operator would mount the same Secret:
``/etc/alertmanager/secrets/<secret>/<key>``). Neither ever contains a credential.
"""

from __future__ import annotations

from typing import Any

from kuberay.values import Values

PAGERDUTY_KEY = "pagerduty-routing-key"
SLACK_KEY = "slack-webhook-url"
SMTP_PASSWORD_KEY = "smtp-password"
SECRETS_MOUNT = "/etc/alertmanager/secrets"

# Alerts that follow from the database being unreachable: paging for them too is noise.
# Never inhibited: TenantIsolationViolation (security) and CircuitBreakerOpen (LLM/SDP side).
DATABASE_SYMPTOMS = (
    "HighQueueDepth",
    "WorkerFailures",
    "HighAPILatency",
    "LowSuccessRate",
    "HighEnhancementLatency",
    "LowFeedbackRating",
)
# Alerts that follow from the Serve application not running at all.
APPLICATION_DOWN_SYMPTOMS = (
    "ServeDeploymentUnhealthy",
    "MetricsNotScraped",
    "HighQueueDepth",
    "WorkerFailures",
    "HighAPILatency",
    "LowSuccessRate",
    "HighEnhancementLatency",
)
# (source alert, the alerts it inhibits); only within one namespace (one deployment): an
# outage of another deployment silences nothing here.
INHIBITIONS = (
    ("DatabaseConnectionIssues", DATABASE_SYMPTOMS),
    ("ServeApplicationNotRunning", APPLICATION_DOWN_SYMPTOMS),
)

# (severity matcher or None for every alert, receiver, timing overrides, continue)
_ROUTES: tuple[tuple[str | None, str, dict[str, Any], bool], ...] = (
    ("critical", "pagerduty", {"group_wait": "10s", "repeat_interval": "1h"}, True),
    ("warning", "slack", {}, True),
    # The digest: one mail per severity, new alerts joining it at most hourly, repeated daily.
    (
        None,
        "email-digest",
        {
            "group_by": ["severity"],
            "group_wait": "5m",
            "group_interval": "1h",
            "repeat_interval": "24h",
        },
        False,
    ),
)
_ROOT_TIMING = {
    "group_by": ["alertname", "tenant"],
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "4h",
}


def runbook_url_under(base: str, url: str) -> str:
    """The same runbook page under another base: ``.../runbooks/high-queue-depth/`` under
    ``https://docs.example/runbooks`` is ``https://docs.example/runbooks/high-queue-depth/``."""
    page = url.rstrip("/").rsplit("/", 1)[1]
    return f"{base.rstrip('/')}/{page}/"


def rules_for_deployment(groups: list[dict[str, Any]], values: Values) -> list[dict[str, Any]]:
    """The alert rules with two changes: every alert carries ``namespace`` (an
    AlertmanagerConfig only receives alerts labelled with its namespace, and the rules'
    aggregations drop the scraped one) and, when ``monitoring.runbookBaseUrl`` is set, the
    runbook links point there, keeping each alert's page (``<base>/<page>/``)."""
    base = values.monitoring.runbook_base_url
    for group in groups:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            rule["labels"] = {**rule.get("labels", {}), "namespace": values.namespace}
            if base:
                rule["annotations"]["runbook_url"] = runbook_url_under(
                    base, rule["annotations"]["runbook_url"]
                )
    return groups


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def plain_config(values: Values) -> dict[str, Any]:
    """``alertmanager.yml`` for an Alertmanager without the operator."""
    alerting = values.monitoring.alerting
    secret_dir = f"{SECRETS_MOUNT}/{alerting.secret_name}"
    routes = []
    for severity, receiver, timing, keep_going in _ROUTES:
        route: dict[str, Any] = {"receiver": receiver, **timing}
        if severity:
            route["matchers"] = [f'severity="{severity}"']
        if keep_going:
            route["continue"] = True
        routes.append(route)
    return {
        "global": {
            "resolve_timeout": "5m",
            "smtp_smarthost": alerting.smarthost,
            "smtp_from": alerting.email_from,
            "smtp_auth_username": alerting.smtp_username,
            "smtp_auth_password_file": f"{secret_dir}/{SMTP_PASSWORD_KEY}",
        },
        "route": {"receiver": "email-digest", **_ROOT_TIMING, "routes": routes},
        "inhibit_rules": [
            {
                "source_matchers": [f'alertname="{source}"'],
                "target_matchers": [f'alertname=~"{"|".join(targets)}"'],
                "equal": ["namespace"],
            }
            for source, targets in INHIBITIONS
        ],
        "receivers": [
            {
                "name": "pagerduty",
                "pagerduty_configs": [
                    {"routing_key_file": f"{secret_dir}/{PAGERDUTY_KEY}", "send_resolved": True}
                ],
            },
            {
                "name": "slack",
                "slack_configs": [
                    {
                        "api_url_file": f"{secret_dir}/{SLACK_KEY}",
                        "channel": alerting.slack_channel,
                        "send_resolved": True,
                        "title": "{{ .CommonLabels.alertname }} ({{ .Status }})",
                        "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n"
                        "{{ .Annotations.runbook_url }}\n{{ end }}",
                    }
                ],
            },
            {
                "name": "email-digest",
                "email_configs": [{"to": alerting.email_to, "send_resolved": False}],
            },
        ],
    }


def _matcher(text: str) -> dict[str, str]:
    """``severity="critical"`` → the operator's matcher object."""
    for op in ("=~", "!~", "!=", "="):
        if op in text:
            name, value = text.split(op, 1)
            return {"name": name, "value": value.strip('"'), "matchType": op}
    raise ValueError(text)


def alertmanager_config(values: Values) -> dict[str, Any]:
    """The same routing as an ``AlertmanagerConfig`` (``monitoring.coreos.com/v1alpha1``).

    The operator confines it to alerts carrying ``namespace=<this namespace>``; the rendered
    PrometheusRule sets that label on every alert for this reason."""
    alerting = values.monitoring.alerting
    plain = plain_config(values)

    def route(node: dict[str, Any]) -> dict[str, Any]:
        out = {_camel(k): v for k, v in node.items() if k not in ("matchers", "routes")}
        if "matchers" in node:
            out["matchers"] = [_matcher(m) for m in node["matchers"]]
        if "routes" in node:
            out["routes"] = [route(child) for child in node["routes"]]
        return out

    def ref(key: str) -> dict[str, str]:
        return {"name": alerting.secret_name, "key": key}

    slack = plain["receivers"][1]["slack_configs"][0]
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": {
            "name": f"{values.name}-alerting",
            "namespace": values.namespace,
            "labels": {
                "app.kubernetes.io/name": "ai-agents",
                "app.kubernetes.io/instance": values.name,
                **values.labels,
                **values.monitoring.labels,
            },
        },
        "spec": {
            "route": route(plain["route"]),
            "inhibitRules": [
                {
                    "sourceMatch": [_matcher(m) for m in inhibit["source_matchers"]],
                    "targetMatch": [_matcher(m) for m in inhibit["target_matchers"]],
                    "equal": list(inhibit["equal"]),
                }
                for inhibit in plain["inhibit_rules"]
            ],
            "receivers": [
                {
                    "name": "pagerduty",
                    "pagerdutyConfigs": [{"routingKey": ref(PAGERDUTY_KEY), "sendResolved": True}],
                },
                {
                    "name": "slack",
                    "slackConfigs": [
                        {
                            "apiURL": ref(SLACK_KEY),
                            "channel": alerting.slack_channel,
                            "sendResolved": True,
                            "title": slack["title"],
                            "text": slack["text"],
                        }
                    ],
                },
                {
                    "name": "email-digest",
                    "emailConfigs": [
                        {
                            "to": alerting.email_to,
                            "from": alerting.email_from,
                            "smarthost": alerting.smarthost,
                            "authUsername": alerting.smtp_username,
                            "authPassword": ref(SMTP_PASSWORD_KEY),
                            "sendResolved": False,
                        }
                    ],
                },
            ],
        },
    }

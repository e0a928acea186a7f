"""The monitoring objects `ai-agents kuberay render` writes: PodMonitors for Ray's metrics,
a ServiceMonitor for the ingress' /metrics (with the metrics token), the PrometheusRule built
from ``kuberay/alerts.yaml`` and the Grafana dashboards' ConfigMap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from kuberay.manifests.alerting import rules_for_deployment
from kuberay.manifests.cluster import metadata
from kuberay.values import METRICS_TOKEN_SECRET_KEY, Values

ALERTS_FILE = Path(__file__).parents[1] / "alerts.yaml"
DASHBOARDS_DIR = Path(__file__).parents[1] / "dashboards"
DASHBOARD_FILES = ("operations.json", "baseline.json")


def _monitoring_metadata(values: Values, name: str) -> dict[str, Any]:
    meta = metadata(values, name, "monitoring")
    meta["labels"] = {**meta["labels"], **values.monitoring.labels}
    return meta


def _pod_endpoint(values: Values, port: str) -> dict[str, Any]:
    return {
        "port": port,
        "interval": values.monitoring.scrape_interval,
        # The label Ray's own Grafana dashboards filter on.
        "relabelings": [
            {
                "sourceLabels": ["__meta_kubernetes_pod_label_ray_io_cluster"],
                "targetLabel": "ray_io_cluster",
            }
        ],
    }


def pod_monitor(values: Values, node: str) -> dict[str, Any]:
    ports = ["metrics", "as-metrics", "dash-metrics"] if node == "head" else ["metrics"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _monitoring_metadata(values, f"{values.name}-ray-{node}"),
        "spec": {
            "jobLabel": f"ray-{node}",
            "namespaceSelector": {"matchNames": [values.namespace]},
            "selector": {
                "matchLabels": {"app.kubernetes.io/instance": values.name, "ray.io/node-type": node}
            },
            "podMetricsEndpoints": [_pod_endpoint(values, p) for p in ports],
        },
    }


def service_monitor(values: Values) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _monitoring_metadata(values, f"{values.name}-ingress-metrics"),
        "spec": {
            "namespaceSelector": {"matchNames": [values.namespace]},
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": values.name,
                    "app.kubernetes.io/component": "serve",
                }
            },
            # /metrics names every tenant: it answers only the metrics token, which
            # Prometheus reads from the service's Secret (same namespace as this monitor)
            "endpoints": [
                {
                    "port": "serve",
                    "path": "/metrics",
                    "interval": values.monitoring.scrape_interval,
                    "authorization": {
                        "type": "Bearer",
                        "credentials": {
                            "name": values.secret_name,
                            "key": METRICS_TOKEN_SECRET_KEY,
                        },
                    },
                }
            ],
        },
    }


def alert_groups() -> list[dict[str, Any]]:
    return yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))["groups"]


def prometheus_rule(values: Values) -> dict[str, Any]:
    """kuberay/alerts.yaml, labelled and linked for this deployment (alerting.py)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _monitoring_metadata(values, f"{values.name}-alerts"),
        "spec": {"groups": rules_for_deployment(alert_groups(), values)},
    }


def dashboard_metadata(values: Values, name: str) -> dict[str, Any]:
    """Metadata the Grafana sidecar selects dashboards by (ours and Ray's)."""
    meta = metadata(values, name, "dashboards")
    meta["labels"] = {**meta["labels"], **values.monitoring.dashboard_labels}
    if values.monitoring.dashboard_annotations:
        meta["annotations"] = dict(values.monitoring.dashboard_annotations)
    return meta


def dashboards_configmap(values: Values) -> dict[str, Any]:
    data = {}
    for filename in DASHBOARD_FILES:
        board = json.loads((DASHBOARDS_DIR / filename).read_text(encoding="utf-8"))
        data[f"ai-agents-{filename}"] = json.dumps(board, indent=2, sort_keys=True) + "\n"
    meta = dashboard_metadata(values, f"{values.name}-grafana-dashboards")
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}

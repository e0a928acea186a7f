"""Ray's own Grafana dashboards on KubeRay (the head pod's ``RAY_GRAFANA_HOST``,
``RAY_GRAFANA_IFRAME_HOST`` and ``RAY_PROMETHEUS_HOST``, which let the dashboard's Metrics and
Serve tabs query Prometheus and embed Grafana, are set in ``manifests.ray_dashboard_env``).

Ray writes its dashboards into the session directory when the head starts
(``ray.dashboard.modules.metrics``); nothing on a cluster copies them into Grafana. Here they
are generated at render time by the same Ray functions, for the Ray this project pins, and
shipped as ConfigMaps next to ours (one per dashboard, each well under the 256 KiB that a
client-side ``kubectl apply`` can store). They keep Ray's uids (``rayDefaultDashboard``,
``rayServeDashboard``, ``rayServeDeploymentDashboard``), which is what the Ray dashboard
embeds through ``RAY_GRAFANA_IFRAME_HOST``.
"""

from __future__ import annotations

import json
from typing import Any

from kuberay.manifests.monitoring import dashboard_metadata
from kuberay.values import Values

# Marks ConfigMaps holding Ray's dashboards: validate checks their JSON, not their metric
# names against our catalogue (they chart Ray's own metrics).
RAY_DASHBOARDS_ANNOTATION = "ai-agents.io/dashboards-from"


def _ray_dashboards() -> dict[str, str]:
    from ray.dashboard.modules.metrics import grafana_dashboard_factory as factory

    boards = {
        "default": factory.generate_default_grafana_dashboard,
        "serve": factory.generate_serve_grafana_dashboard,
        "serve-deployment": factory.generate_serve_deployment_grafana_dashboard,
    }
    out = {}
    for name, generate in boards.items():
        content, _uid = generate()
        out[name] = json.dumps(json.loads(content), sort_keys=True, separators=(",", ":"))
    return out


def ray_dashboard_configmaps(values: Values) -> list[dict[str, Any]]:
    maps = []
    for name, board in _ray_dashboards().items():
        meta = dashboard_metadata(values, f"{values.name}-ray-dashboard-{name}")
        meta["annotations"] = {**meta.get("annotations", {}), RAY_DASHBOARDS_ANNOTATION: "ray"}
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta,
                "data": {f"ray-{name}-grafana-dashboard.json": board + "\n"},
            }
        )
    return maps

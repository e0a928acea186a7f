"""The NetworkPolicies of the deployment (``networkpolicy.yaml``).

Every pod of the deployment (``app.kubernetes.io/instance: <name>``: the Ray head and workers,
the migration Job, the ranking-fit CronJob) is denied all traffic by default, then allowed
exactly:

- ``<name>-ray-cluster``: Ray's ports (``ray_ports.cluster_ports``: all pinned) between the
  Ray pods of this deployment, both ways;
- ``<name>-kuberay-operator``: the dashboard port of the head from the KubeRay operator (it
  deploys ``serveConfigV2`` and submits RayJobs through the dashboard);
- ``<name>-serve``: the Serve port from the ingress controller's namespace (webhooks, API)
  and from the monitoring namespace (the ingress ``/metrics``, which also needs the metrics
  token: a NetworkPolicy cannot tell paths apart);
- ``<name>-metrics``: the Ray metrics ports from the monitoring namespace;
- egress: DNS and PostgreSQL for every pod; the LLM, SDP and the OTLP collector for the Ray
  pods; Redis (GCS fault tolerance) and the Kubernetes API (the autoscaler) for the head.

Ports are numbers, not container-port names, so the policy means the same whichever pod it
is read against; ``kuberay.validation`` checks every pinned Ray port is in it, and
``local_stack.hosts.firewall`` turns the same objects into packet filter rules.
"""

from __future__ import annotations

from typing import Any

from kuberay.manifests.ray_ports import (
    AUTOSCALER_METRICS_PORT,
    DASHBOARD_METRICS_PORT,
    DASHBOARD_PORT,
    METRICS_PORT,
    RayPort,
    cluster_ports,
)
from kuberay.manifests.serve_config import SERVE_PORT
from kuberay.security_values import Peer
from kuberay.values import Values

NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace


def _selector(values: Values, *components: str) -> dict[str, Any]:
    """Pods of this deployment, optionally only some components."""
    selector: dict[str, Any] = {"matchLabels": {"app.kubernetes.io/instance": values.name}}
    if len(components) == 1:
        selector["matchLabels"]["app.kubernetes.io/component"] = components[0]
    elif components:
        selector["matchExpressions"] = [
            {
                "key": "app.kubernetes.io/component",
                "operator": "In",
                "values": sorted(components),
            }
        ]
    return selector


def ray_pods(values: Values) -> dict[str, Any]:
    return _selector(values, "ray-head", "ray-worker")


def _namespace_peer(namespace: str, pod_labels: dict[str, str] | None = None) -> dict[str, Any]:
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: namespace}}}
    if pod_labels:
        peer["podSelector"] = {"matchLabels": dict(pod_labels)}
    return peer


def _port(port: int, protocol: str = "TCP", end_port: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"port": port, "protocol": protocol}
    if end_port is not None:
        out["endPort"] = end_port
    return out


def _ray_port(port: RayPort) -> dict[str, Any]:
    return _port(port.port, end_port=port.end_port)


def peer_rule(peer: Peer, direction: str) -> dict[str, Any]:
    """One ingress (``from``) or egress (``to``) rule for a values peer."""
    if peer.cidr is not None:
        block: dict[str, Any] = {"cidr": peer.cidr}
        if peer.except_:
            block["except"] = list(peer.except_)
        target = {"ipBlock": block}
    else:
        assert peer.namespace is not None  # Peer's validator: cidr or namespace
        target = _namespace_peer(peer.namespace, peer.pod_labels)
    ports = [_port(p, proto) for proto in peer.protocols for p in peer.ports]
    return {direction: [target], "ports": ports}


def _policy(
    values: Values,
    name: str,
    selector: dict[str, Any],
    *,
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
    labels: dict[str, str],
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"{values.name}-{name}",
            "namespace": values.namespace,
            "labels": labels,
        },
        "spec": spec,
    }


def network_policies(values: Values, labels: dict[str, str]) -> list[dict[str, Any]]:
    if not values.network_policy.enabled:
        return []
    policy = values.network_policy
    egress = policy.egress
    haproxy = values.serve.ingress_mode == "haproxy"
    ray = ray_pods(values)
    ports = [_ray_port(p) for p in cluster_ports(haproxy=haproxy)]
    head = _selector(values, "ray-head")
    operator = _namespace_peer(
        policy.kuberay_operator_namespace, policy.kuberay_operator_pod_labels
    )
    monitoring = _namespace_peer(policy.monitoring_namespace)
    head_egress = [peer_rule(p, "to") for p in egress.kubernetes_api]
    if values.gcs_fault_tolerance.enabled:
        head_egress += [peer_rule(p, "to") for p in egress.redis]
    return [
        _policy(values, "default-deny", _selector(values), ingress=[], egress=[], labels=labels),
        _policy(
            values,
            "ray-cluster",
            ray,
            ingress=[{"from": [{"podSelector": ray}], "ports": ports}],
            egress=[{"to": [{"podSelector": ray}], "ports": ports}],
            labels=labels,
        ),
        _policy(
            values,
            "kuberay-operator",
            head,
            ingress=[{"from": [operator], "ports": [_port(DASHBOARD_PORT)]}],
            labels=labels,
        ),
        _policy(
            values,
            "serve",
            ray,
            ingress=[
                {
                    "from": [_namespace_peer(policy.ingress_controller_namespace), monitoring],
                    "ports": [_port(SERVE_PORT)],
                }
            ],
            labels=labels,
        ),
        _policy(
            values,
            "metrics",
            ray,
            ingress=[{"from": [monitoring], "ports": [_port(METRICS_PORT)]}],
            labels=labels,
        ),
        _policy(
            values,
            "head-metrics",
            head,
            ingress=[
                {
                    "from": [monitoring],
                    "ports": [_port(AUTOSCALER_METRICS_PORT), _port(DASHBOARD_METRICS_PORT)],
                }
            ],
            labels=labels,
        ),
        _policy(
            values,
            "egress-database",
            _selector(values),
            egress=[peer_rule(p, "to") for p in [*egress.dns, *egress.postgres]],
            labels=labels,
        ),
        _policy(
            values,
            "egress-services",
            ray,
            egress=[peer_rule(p, "to") for p in [*egress.llm, *egress.sdp, *egress.otlp]],
            labels=labels,
        ),
        _policy(values, "egress-head", head, egress=head_egress, labels=labels),
    ]

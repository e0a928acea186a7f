"""Ray's ports, pinned and allowed: the checks that keep the NetworkPolicy exact.

- Every Ray group pins each port Ray would otherwise pick at random
  (``ray_ports.pinned_port_params``); an unpinned port cannot be named in a policy.
- When the manifests carry NetworkPolicies, every pinned port of the cluster (and the GCS,
  the dashboard, the Serve port) must be reachable between the cluster's pods under them,
  evaluated as Kubernetes would (``network_rules``): a policy that forgets a port Ray needs
  fails here, naming the port's ``rayStartParams`` field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kuberay.manifests.ray_ports import (
    DASHBOARD_PORT,
    GCS_PORT,
    MONITORING_ONLY,
    RAY_PORTS,
    pinned_port_params,
)
from kuberay.manifests.serve_config import SERVE_PORT
from kuberay.problems import Finding, Problem, join_path
from kuberay.validation.network_rules import Endpoint, allowed
from kuberay.validation.references import pod_templates


def pinned_port_problems(cluster_spec: Mapping[str, Any], base: str) -> list[Problem]:
    problems = []
    groups = [("headGroupSpec", cluster_spec.get("headGroupSpec"), True)]
    groups += [
        (f"workerGroupSpecs[{i}]", g, False)
        for i, g in enumerate(cluster_spec.get("workerGroupSpecs") or [])
    ]
    for where, group, head in groups:
        if not isinstance(group, dict):
            continue
        params = group.get("rayStartParams") or {}
        for key in pinned_port_params(head=head):
            if key not in params:
                problems.append(
                    Problem(
                        f"{base}.{where}.rayStartParams.{key}",
                        "required: pin the port so the NetworkPolicy can name it "
                        "(Ray picks a random one otherwise)",
                    )
                )
    return problems


def _cluster_ports(cluster: Mapping[str, Any], base: str) -> list[tuple[str, int, bool]]:
    """(rayStartParams path, port, head only) of every port the cluster's pods use."""
    head = (cluster.get("headGroupSpec") or {}).get("rayStartParams") or {}
    at_head = join_path(base, "headGroupSpec", "rayStartParams")
    ports: list[tuple[str, int, bool]] = [
        (join_path(at_head, "port"), GCS_PORT, True),
        (join_path(at_head, "dashboard-port"), DASHBOARD_PORT, True),
        ("serveConfigV2.http_options.port", SERVE_PORT, False),
    ]
    groups = [("headGroupSpec", head)] + [
        (f"workerGroupSpecs[{i}]", (g or {}).get("rayStartParams") or {})
        for i, g in enumerate(cluster.get("workerGroupSpecs") or [])
    ]
    by_param = {p.param: p for p in RAY_PORTS if p.param}
    for where, params in groups:
        for key, value in params.items():
            spec = by_param.get(key)
            if spec is None or spec.name in MONITORING_ONLY or not str(value).isdigit():
                continue
            path = f"{base}.{where}.rayStartParams.{key}"
            ports.append((path, int(value), spec.head_only))
            if key == "min-worker-port" and str(params.get("max-worker-port", "")).isdigit():
                top = int(params["max-worker-port"])
                ports.append((f"{base}.{where}.rayStartParams.max-worker-port", top, False))
    return ports


def _endpoints(doc: Mapping[str, Any], cluster: Mapping[str, Any]) -> tuple[Endpoint, Endpoint]:
    namespace = (doc.get("metadata") or {}).get("namespace", "")
    labels = {}
    for path, template in pod_templates(cluster, ""):
        kind = "head" if path.startswith("headGroupSpec") else "worker"
        labels[kind] = {
            **((template.get("metadata") or {}).get("labels") or {}),
            "ray.io/node-type": kind,
        }
    head = Endpoint("head", namespace, labels.get("head", {}), "192.0.2.1")
    worker = Endpoint("worker", namespace, labels.get("worker", {}), "192.0.2.2")
    return head, worker


def policy_findings(loaded: list[tuple[str, str, dict[str, Any]]]) -> list[Finding]:
    """Ports of each Ray cluster that its namespace's NetworkPolicies leave unreachable."""
    policies = [doc for _, _, doc in loaded if doc.get("kind") == "NetworkPolicy"]
    if not policies:
        return []
    findings = []
    for filename, name, doc in loaded:
        kind, spec = doc.get("kind"), doc.get("spec") or {}
        if kind == "RayService":
            cluster, base = spec.get("rayClusterConfig"), "spec.rayClusterConfig"
        elif kind == "RayCluster":
            cluster, base = spec, "spec"
        else:
            continue
        if not isinstance(cluster, dict):
            continue
        head, worker = _endpoints(doc, cluster)
        worker2 = Endpoint("worker-2", worker.namespace, worker.labels, "192.0.2.3")
        endpoints = [head, worker, worker2]
        for path, port, head_only in _cluster_ports(cluster, base):
            pairs = [(worker, head)]
            if not head_only:
                pairs += [(head, worker), (worker, worker2)]
            blocked = [
                f"{a.name} -> {b.name}"
                for a, b in pairs
                if not allowed(a, b, port, policies, endpoints)
            ]
            if blocked:
                findings.append(
                    Finding(
                        filename,
                        name,
                        path,
                        f"port {port} is not allowed between the cluster's pods by the "
                        f"NetworkPolicies ({', '.join(blocked)})",
                    )
                )
    return findings

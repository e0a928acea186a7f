"""References between the validated manifests: Secret keys, Ingress backends and selectors
that must point at something the same set of manifests creates.

Each document can be valid on its own and the deployment still broken: a ``secretKeyRef`` to a
key the Secret template lacks, an Ingress to a Service of another name, a monitor whose
selector matches no pod. Those only show up when all documents are looked at together, which
is why this runs after the per-document checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kuberay.problems import Finding, Problem, join_path
from kuberay.values import ALL_SECRET_KEYS


def secret_env_problems(node: Any, path: str = "") -> list[Problem]:
    """Secret keys passed by value anywhere in a manifest (env lists, env_vars maps)."""
    problems: list[Problem] = []
    if isinstance(node, dict):
        for key, value in node.items():
            problems += secret_env_problems(value, join_path(path, str(key)))
        if path.endswith("env_vars"):
            problems += [
                Problem(join_path(path, k), "secret passed by value; use the Secret")
                for k in node
                if k in ALL_SECRET_KEYS
            ]
    elif isinstance(node, list):
        for i, item in enumerate(node):
            problems += secret_env_problems(item, f"{path}[{i}]")
            if (
                path.endswith("env")
                and isinstance(item, dict)
                and item.get("name") in ALL_SECRET_KEYS
                and "value" in item
            ):
                problems.append(
                    Problem(
                        f"{path}[{i}].value", "secret passed by value; use valueFrom.secretKeyRef"
                    )
                )
    return problems


def pod_templates(cluster_spec: Mapping[str, Any], base: str):
    """(path, template) of the head and every worker group: the pods a Ray cluster spec
    creates, needed here for selector matching and by the grace-period check."""
    head = (cluster_spec.get("headGroupSpec") or {}).get("template")
    if isinstance(head, dict):
        yield join_path(base, "headGroupSpec", "template"), head
    for i, group in enumerate(cluster_spec.get("workerGroupSpecs") or []):
        if isinstance(group, dict) and isinstance(group.get("template"), dict):
            yield join_path(base, "workerGroupSpecs", i, "template"), group["template"]


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, join_path(path, str(key)))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]")


def _pod_label_sets(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Labels the pods of a RayService/RayCluster/Job will carry (KubeRay adds node-type)."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Job":
        return [((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}]
    cluster = spec.get("rayClusterConfig") if doc.get("kind") == "RayService" else spec
    if not isinstance(cluster, dict):
        return []
    sets = []
    for path, template in pod_templates(cluster, ""):
        node = "head" if path.startswith("headGroupSpec") else "worker"
        sets.append(
            {**((template.get("metadata") or {}).get("labels") or {}), "ray.io/node-type": node}
        )
    return sets


def _selects(selector: Mapping[str, Any], label_sets: list[dict[str, str]]) -> bool:
    wanted = {
        k: v
        for k, v in selector.items()
        if not (k.startswith("ray.io/") and k != "ray.io/node-type")
    }  # KubeRay-managed
    return any(wanted.items() <= labels.items() for labels in label_sets)


# The key of authOptions.secretName that KubeRay reads Ray's token from.
RAY_TOKEN_KEY = "auth_token"


def _secret_refs(path: str, node: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(path, Secret, key) of every Secret key ``node`` refers to: ``secretKeyRef``, a secret
    volume's or projected source's ``items``, KubeRay's ``authOptions.secretName``."""
    refs = []
    ref = node.get("secretKeyRef")
    if isinstance(ref, dict):
        refs.append((join_path(path, "secretKeyRef"), ref.get("name", ""), ref.get("key", "")))
    volume = node.get("secret")
    if isinstance(volume, dict) and isinstance(volume.get("items"), list):
        secret = volume.get("secretName") or volume.get("name") or ""
        for i, item in enumerate(volume["items"]):
            if isinstance(item, dict):
                at = join_path(path, "secret", "items", i, "key")
                refs.append((at, secret, item.get("key", "")))
    auth = node.get("authOptions")
    if isinstance(auth, dict) and auth.get("mode") == "token" and auth.get("secretName"):
        at = join_path(path, "authOptions", "secretName")
        refs.append((at, auth["secretName"], RAY_TOKEN_KEY))
    return refs


def reference_findings(loaded: list[tuple[str, str, dict[str, Any]]]) -> list[Finding]:
    """Names and selectors that point at nothing among the validated manifests."""
    secrets: dict[tuple[str, str], set[str]] = {}
    services: dict[tuple[str, str], dict[str, str]] = {}
    pods: dict[str, list[dict[str, str]]] = {}
    for _, _, doc in loaded:
        meta = doc.get("metadata") or {}
        ns, name, kind = meta.get("namespace", ""), meta.get("name", ""), doc.get("kind")
        spec = v if isinstance(v := doc.get("spec"), dict) else {}
        if kind == "Secret":
            secrets[(ns, name)] = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
        elif kind == "Service":
            services[(ns, name)] = meta.get("labels") or {}
        elif kind == "RayService":
            serve = spec.get("serveService") or {}
            serve_meta = serve.get("metadata") or {}
            services[(ns, serve_meta.get("name") or f"{name}-serve-svc")] = (
                serve_meta.get("labels") or {}
            )
            services[(ns, f"{name}-head-svc")] = {}
        pods.setdefault(ns, []).extend(
            _pod_label_sets(doc) if kind in ("RayService", "RayCluster", "Job") else []
        )
    findings = []
    for filename, name, doc in loaded:
        ns = (doc.get("metadata") or {}).get("namespace", "")
        kind = doc.get("kind")
        spec = v if isinstance(v := doc.get("spec"), dict) else {}
        for path, node in _walk(doc):
            for at, secret, key in _secret_refs(path, node) if secrets else []:
                keys = secrets.get((ns, secret))
                if keys is None:
                    problem = f"Secret '{secret}' is not among these manifests"
                elif key not in keys:
                    problem = f"Secret '{secret}' has no key '{key}'"
                else:
                    continue
                findings.append(Finding(filename, name, at, problem))
            backend = node.get("service") if kind == "Ingress" and "service" in node else None
            if isinstance(backend, dict) and (ns, backend.get("name")) not in services:
                findings.append(
                    Finding(
                        filename,
                        name,
                        join_path(path, "service", "name"),
                        f"no Service '{backend.get('name')}' is created by these manifests",
                    )
                )
        monitors_or_budgets = ("ServiceMonitor", "PodMonitor", "PodDisruptionBudget")
        selector = (spec.get("selector") or {}) if kind in monitors_or_budgets else {}
        match = selector.get("matchLabels") or {}
        if kind == "ServiceMonitor" and not any(
            match.items() <= labels.items() for (sns, _), labels in services.items() if sns == ns
        ):
            findings.append(
                Finding(
                    filename,
                    name,
                    "spec.selector.matchLabels",
                    "selects no Service of these manifests",
                )
            )
        pod_selector = (
            match
            if kind in ("PodMonitor", "PodDisruptionBudget")
            else (spec.get("selector") if kind == "Service" else None)
        )
        if pod_selector and pods.get(ns) and not _selects(pod_selector, pods[ns]):
            at = "spec.selector" if kind == "Service" else "spec.selector.matchLabels"
            findings.append(Finding(filename, name, at, "selects no pods of these manifests"))
    return findings

"""Offline validation of rendered manifests (`ai-agents kuberay validate DIR`).

- RayService / RayCluster: the vendored KubeRay v1.7 CRD schema (``kuberay/crds/``) made
  strict: ``additionalProperties: false`` on every object schema that lists properties, so a
  misspelt field fails instead of being pruned by the API server. ``serveConfigV2`` is parsed
  and checked with Ray's ``ServeDeploySchema`` plus the key whitelist of
  ``kuberay.manifests.serve_config``.
- RayJob: no RayJob CRD is vendored; its spec field names and KubeRay's own rules are checked,
  and an embedded ``rayClusterSpec``/``submitterPodTemplate`` against the RayCluster CRD.
- Service, Ingress, Secret, Job, CronJob, ConfigMap: ``kubernetes-validate`` (Kubernetes 1.30,
  strict); a CronJob's ``schedule`` also as Kubernetes' cron parser reads it.
- PodMonitor, ServiceMonitor, PrometheusRule: structural checks; every alert rule needs
  alert/expr/for/labels.severity/annotations (runbook_url) and may only use catalogue metrics;
  ``promtool check rules`` also runs when promtool is installed.
- Everywhere: secrets never by value; the Secret template carries no values; every pod
  template meets the Pod Security "restricted" profile (``pod_security``).
- Across documents: Secret keys, Ingress backends and selectors must resolve; every Ray port
  is pinned and, with NetworkPolicies, reachable between the cluster's pods
  (``network_checks``).

This module dispatches per kind and builds the report; the strict CRD schemas live in
``kuberay.validation.strict_schemas``, the monitoring checks in
``kuberay.validation.prometheus_checks`` and the cross-document checks in
``kuberay.validation.references``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kuberay.capacity import capacity_problems, num_cpus_problems, worker_pod_cpus
from kuberay.manifests.ray_dashboards import RAY_DASHBOARDS_ANNOTATION
from kuberay.manifests.serve_config import longest_graceful_shutdown_s, serve_config_problems
from kuberay.problems import Finding, Problem, join_path
from kuberay.schedule_values import cron_problem
from kuberay.validation.network_checks import pinned_port_problems, policy_findings
from kuberay.validation.pod_security import restricted_problems
from kuberay.validation.prometheus_checks import check_monitoring
from kuberay.validation.promql import RAY_NATIVE_METRICS, unknown_metrics
from kuberay.validation.rayjob import check_rayjob
from kuberay.validation.references import (
    pod_templates,
    reference_findings,
    secret_env_problems,
)
from kuberay.validation.strict_schemas import crd_validator, schema_problems
from kuberay.values import installed_ray_version

KUBERNETES_VERSION = "1.30"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
_MONITORING_API = "monitoring.coreos.com/v1"


@dataclass
class Report:
    errors: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": [asdict(e) for e in sorted(self.errors)],
            "notes": sorted(set(self.notes)),
            "documents": self.documents,
        }


def _cluster_problems(cluster_spec: Any, base: str, longest_shutdown_s: float) -> list[Problem]:
    if not isinstance(cluster_spec, dict):
        return []
    problems = num_cpus_problems(cluster_spec, base) + pinned_port_problems(cluster_spec, base)
    version = cluster_spec.get("rayVersion")
    if version is not None and version != installed_ray_version():
        problems.append(
            Problem(
                join_path(base, "rayVersion"),
                f"'{version}' differs from the Ray this project pins ({installed_ray_version()})",
            )
        )
    for path, template in pod_templates(cluster_spec, base):
        grace = (template.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        if isinstance(grace, int) and grace < longest_shutdown_s:
            problems.append(
                Problem(
                    join_path(path, "spec", "terminationGracePeriodSeconds"),
                    f"{grace} s is shorter than the longest graceful_shutdown_timeout_s "
                    f"({longest_shutdown_s:g} s): pods would be killed mid-drain",
                )
            )
    return problems


def _check_rayservice(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = schema_problems(crd_validator("RayService").iter_errors(doc))
    spec = v if isinstance(v := doc.get("spec"), dict) else {}
    raw = spec.get("serveConfigV2")
    longest = 0.0
    config: Any = None
    if raw is None:
        problems.append(Problem("spec.serveConfigV2", "required: the Serve config"))
    elif isinstance(raw, str):
        try:
            config = yaml.load(raw, Loader=_LOADER)
        except yaml.YAMLError as exc:
            detail = getattr(exc, "problem", None) or "cannot parse"
            problems.append(Problem("spec.serveConfigV2", f"invalid YAML: {detail}"))
            config = None
        if config is not None:
            problems += serve_config_problems(config, "spec.serveConfigV2")
            problems += secret_env_problems(config, "spec.serveConfigV2")
            if isinstance(config, dict):
                longest = longest_graceful_shutdown_s(config)
    cluster = spec.get("rayClusterConfig")
    problems += _cluster_problems(cluster, "spec.rayClusterConfig", longest)
    if isinstance(config, dict) and isinstance(cluster, dict):
        pod_cpus = worker_pod_cpus(cluster)
        if pod_cpus is not None:
            where = "spec.rayClusterConfig.workerGroupSpecs"
            problems += capacity_problems(config, pod_cpus, where)
    return problems


def _check_raycluster(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = schema_problems(crd_validator("RayCluster").iter_errors(doc))
    return problems + _cluster_problems(doc.get("spec"), "spec", 0.0)


def _check_core(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    try:  # the `local` extra: an operator's machine has it, the service image does not
        from kubernetes_validate import utils as k8s_validate
    except ModuleNotFoundError:
        raise RuntimeError(
            "validating Kubernetes objects needs kubernetes-validate: "
            "pip install 'ai-agents[local]'"
        ) from None
    try:
        k8s_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except k8s_validate.ValidationError as error:
        return schema_problems([error])
    except k8s_validate.SchemaNotFoundError:
        return [
            Problem(
                "",
                f"no schema for {doc.get('apiVersion')} {doc.get('kind')} "
                f"in Kubernetes {KUBERNETES_VERSION}",
            )
        ]
    return []


def _check_secret(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = _check_core(doc, report_notes)
    for key in ("data", "stringData"):
        for name, value in (doc.get(key) or {}).items():
            if value not in ("", None):
                problems.append(
                    Problem(
                        join_path(key, name),
                        "has a value: render Secret templates with empty values",
                    )
                )
    return problems


def _check_cronjob(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = _check_core(doc, report_notes)
    schedule = (doc.get("spec") or {}).get("schedule")
    if isinstance(schedule, str) and (problem := cron_problem(schedule)):
        problems.append(Problem("spec.schedule", problem))
    return problems


def _json_problems(doc: dict[str, Any]) -> list[Problem]:
    problems = []
    for name, text in (doc.get("data") or {}).items():
        try:
            json.loads(text)
        except (TypeError, ValueError) as exc:
            problems.append(Problem(join_path("data", name), f"not a JSON dashboard: {exc}"))
    return problems


def _check_configmap(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = _check_core(doc, report_notes)
    if "grafana_dashboard" not in ((doc.get("metadata") or {}).get("labels") or {}):
        return problems
    if RAY_DASHBOARDS_ANNOTATION in ((doc.get("metadata") or {}).get("annotations") or {}):
        return problems + _json_problems(doc)  # Ray's own: its metrics, its schema version
    for name, text in (doc.get("data") or {}).items():
        at = join_path("data", name)
        try:
            board = json.loads(text)
        except (TypeError, ValueError) as exc:
            problems.append(Problem(at, f"not a JSON dashboard: {exc}"))
            continue
        if not isinstance(board.get("schemaVersion"), int) or board["schemaVersion"] < 36:
            problems.append(Problem(at, "Grafana schemaVersion must be >= 36"))
        for expr in dashboard_expressions(board):
            unknown = unknown_metrics(expr, RAY_NATIVE_METRICS)
            if unknown:
                problems.append(Problem(at, f"query uses unknown metrics {sorted(unknown)}"))
    return problems


def dashboard_expressions(board: Mapping[str, Any]) -> list[str]:
    exprs = []
    panels = list(board.get("panels") or [])
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels") or [])
        exprs += [t["expr"] for t in panel.get("targets") or [] if t.get("expr")]
    return exprs


_CHECKS = {
    ("ray.io/v1", "RayService"): _check_rayservice,
    ("ray.io/v1", "RayCluster"): _check_raycluster,
    ("ray.io/v1", "RayJob"): check_rayjob,
    ("v1", "Secret"): _check_secret,
    ("batch/v1", "CronJob"): _check_cronjob,
    ("v1", "ConfigMap"): _check_configmap,
    (_MONITORING_API, "PodMonitor"): check_monitoring,
    (_MONITORING_API, "ServiceMonitor"): check_monitoring,
    (_MONITORING_API, "PrometheusRule"): check_monitoring,
}


def _document_name(doc: Mapping[str, Any], index: int) -> str:
    kind = doc.get("kind") or "?"
    meta = v if isinstance(v := doc.get("metadata"), dict) else {}
    name = meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "")
    return f"{kind}/{name}" if name else f"{kind} (document {index + 1})"


def check_document(doc: Any, notes: list[str]) -> list[Problem]:
    if not isinstance(doc, dict):
        return [Problem("", "a manifest must be a mapping")]
    if not doc.get("apiVersion") or not doc.get("kind"):
        return [Problem("", "apiVersion and kind are required")]
    check = _CHECKS.get((doc["apiVersion"], doc["kind"]), _check_core)
    return check(doc, notes) + secret_env_problems(doc) + restricted_problems(doc)


def validate_files(files: Mapping[str, str]) -> Report:
    """Validate ``{filename: YAML text}`` (several documents per file allowed), each document
    on its own, then the references between them (Secrets, Services, selectors)."""
    report = Report()
    seen: dict[tuple[str, str, str, str], str] = {}
    loaded: list[tuple[str, str, dict[str, Any]]] = []
    for filename in sorted(files):
        try:
            docs = [d for d in yaml.load_all(files[filename], Loader=_LOADER) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            report.errors.append(
                Finding(
                    filename, "", "", f"invalid YAML: {where}{getattr(exc, 'problem', None) or exc}"
                )
            )
            continue
        for index, doc in enumerate(docs):
            name = _document_name(doc, index) if isinstance(doc, dict) else f"document {index + 1}"
            problems = check_document(doc, report.notes)
            report.errors += [
                Finding(filename, name, p.path, p.message) for p in sorted(set(problems))
            ]
            report.documents.append({"file": filename, "document": name, "ok": not problems})
            if isinstance(doc, dict):
                loaded.append((filename, name, doc))
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            if isinstance(meta, dict) and meta.get("name"):
                key = (
                    str(doc.get("apiVersion")),
                    str(doc.get("kind")),
                    str(meta.get("namespace", "")),
                    str(meta["name"]),
                )
                if key in seen:
                    report.errors.append(
                        Finding(
                            filename,
                            name,
                            "metadata.name",
                            f"duplicate of a document in {seen[key]}",
                        )
                    )
                seen[key] = filename
    references = reference_findings(loaded) + policy_findings(loaded)
    report.errors += references
    for doc_entry in report.documents:
        if any(
            f.file == doc_entry["file"] and f.document == doc_entry["document"] for f in references
        ):
            doc_entry["ok"] = False
    report.notes = sorted(set(report.notes))
    return report


def validate_dir(directory: Path | str) -> Report:
    """Validate every ``*.yaml``/``*.yml`` file in ``directory`` except kustomize's own
    ``kustomization.yaml`` (not a Kubernetes object; ``kubectl kustomize`` checks it). Given
    the output directory of ``render``, the manifests are those in its ``base/``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory}: not a directory")
    if (directory / "base").is_dir() and not any(directory.glob("*.y*ml")):
        directory = directory / "base"
    paths = sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml")
        and p.is_file()
        and p.name not in ("kustomization.yaml", "kustomization.yml")
    )
    if not paths:
        raise FileNotFoundError(f"{directory}: no .yaml files to validate")
    return validate_files({p.name: p.read_text(encoding="utf-8") for p in paths})

"""Offline validation of rendered manifests (`ai-agents kuberay validate DIR`).

- RayService / RayCluster: the vendored KubeRay v1.7 CRD schema (``kuberay/crds/``) made
  strict: ``additionalProperties: false`` on every object schema that lists properties, so a
  misspelt field fails instead of being pruned by the API server. ``serveConfigV2`` is parsed
  and checked with Ray's ``ServeDeploySchema`` plus the key whitelist of
  ``kuberay.serve_config``.
- RayJob: no RayJob CRD is vendored; its spec field names and KubeRay's own rules are checked,
  and an embedded ``rayClusterSpec``/``submitterPodTemplate`` against the RayCluster CRD.
- Service, Ingress, Secret, Job, ConfigMap: ``kubernetes-validate`` (Kubernetes 1.30, strict).
- PodMonitor, ServiceMonitor, PrometheusRule: structural checks; every alert rule needs
  alert/expr/for/labels.severity/annotations (runbook_url) and may only use catalogue metrics;
  ``promtool check rules`` also runs when promtool is installed.
- Everywhere: secrets only by ``secretKeyRef``; the Secret template carries no values.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kubernetes_validate import utils as k8s_validate

from kuberay.problems import Problem, format_loc, join_path, suggestion
from kuberay.promql import RAY_NATIVE_METRICS, unknown_metrics
from kuberay.serve_config import longest_graceful_shutdown_s, serve_config_problems
from kuberay.values import ALL_SECRET_KEYS, installed_ray_version

CRD_DIR = Path(__file__).with_name("crds")
KUBERNETES_VERSION = "1.30"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
_CRD_FILES = {"RayService": "ray.io_rayservices.yaml", "RayCluster": "ray.io_rayclusters.yaml"}
_MONITORING_API = "monitoring.coreos.com/v1"
_SEVERITIES = {"critical", "warning", "info"}
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")

# ObjectMeta fields a manifest may set (the CRD schemas leave metadata open).
_OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"}, "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"}, "creationTimestamp": {},
        "deletionTimestamp": {}, "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array"}, "selfLink": {"type": "string"},
    },
    "additionalProperties": False,
}
_OBJECT_META_VALIDATOR = jsonschema.Draft7Validator(_OBJECT_META)

# RayJobSpec fields of KubeRay v1.7 (ray-operator/apis/ray/v1/rayjob_types.go).
_RAYJOB_SPEC_FIELDS = frozenset({
    "activeDeadlineSeconds", "backoffLimit", "clusterSelector", "deletionStrategy",
    "entrypoint", "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "jobId",
    "managedBy", "metadata", "rayClusterSpec", "runtimeEnvYAML", "shutdownAfterJobFinishes",
    "submissionMode", "submitterConfig", "submitterPodTemplate", "suspend",
    "ttlSecondsAfterFinished",
})
_SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}
_RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
_REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    document: str
    path: str
    message: str

    def __str__(self) -> str:
        parts = [self.file, self.document, self.path, self.message]
        return ": ".join(p for p in parts if p)


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


# ---------------------------------------------------------------------------- schemas


def _tighten(node: Any) -> Any:
    """Copy of an OpenAPI v3 schema that rejects unknown properties."""
    if isinstance(node, list):
        return [_tighten(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _tighten(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict | list):
            out[key] = _tighten(out[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [_tighten(n) for n in out[key]]
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The strict ``openAPIV3Schema`` of the v1 version of a vendored CRD."""
    text = (CRD_DIR / _CRD_FILES[kind]).read_text(encoding="utf-8")
    crd = yaml.load(text, Loader=_LOADER)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _tighten(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = _OBJECT_META
    return schema


@functools.cache
def _validator(kind: str, *subpath: str) -> jsonschema.Draft7Validator:
    schema = crd_schema(kind)
    for key in subpath:
        schema = schema["properties"][key]
    return jsonschema.Draft7Validator(schema)


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator in ("anyOf", "oneOf"):
        types = [s.get("type") for s in error.validator_value if isinstance(s, dict)]
        if all(isinstance(t, str) for t in types):
            return f"expected {' or '.join(types)}, got {json.dumps(error.instance)}"
    if error.validator == "enum":
        return f"{json.dumps(error.instance)} is not one of {error.validator_value}"
    return error.message


def schema_problems(errors: Iterable[jsonschema.ValidationError], base: str = "") -> list[Problem]:
    problems = []
    for error in errors:
        path = format_loc(list(error.path), base)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for key in sorted(k for k in error.instance if k not in allowed):
                hint = suggestion(key, allowed)
                problems.append(Problem(join_path(path, key),
                                        f"additional property not allowed{hint}"))
        elif error.validator == "required":
            missing = re.match(r"'([^']*)'", error.message)
            key = missing.group(1) if missing else ""
            problems.append(Problem(join_path(path, key), "required property is missing"))
        else:
            problems.append(Problem(path, _describe(error)))
    return problems


# ---------------------------------------------------------------------------- checks


def _metadata_problems(doc: Mapping[str, Any]) -> list[Problem]:
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return [Problem("metadata", "required mapping is missing")]
    problems = schema_problems(_OBJECT_META_VALIDATOR.iter_errors(meta), "metadata")
    if not meta.get("name") and not meta.get("generateName"):
        problems.append(Problem("metadata.name", "required property is missing"))
    return problems


def _secret_env_problems(node: Any, path: str = "") -> list[Problem]:
    """Secret keys passed by value anywhere in a manifest (env lists, env_vars maps)."""
    problems: list[Problem] = []
    if isinstance(node, dict):
        for key, value in node.items():
            problems += _secret_env_problems(value, join_path(path, str(key)))
        if path.endswith("env_vars"):
            problems += [Problem(join_path(path, k), "secret passed by value; use the Secret")
                         for k in node if k in ALL_SECRET_KEYS]
    elif isinstance(node, list):
        for i, item in enumerate(node):
            problems += _secret_env_problems(item, f"{path}[{i}]")
            if (path.endswith("env") and isinstance(item, dict)
                    and item.get("name") in ALL_SECRET_KEYS and "value" in item):
                problems.append(Problem(f"{path}[{i}].value",
                                        "secret passed by value; use valueFrom.secretKeyRef"))
    return problems


def _pod_templates(cluster_spec: Mapping[str, Any], base: str):
    head = (cluster_spec.get("headGroupSpec") or {}).get("template")
    if isinstance(head, dict):
        yield join_path(base, "headGroupSpec", "template"), head
    for i, group in enumerate(cluster_spec.get("workerGroupSpecs") or []):
        if isinstance(group, dict) and isinstance(group.get("template"), dict):
            yield join_path(base, "workerGroupSpecs", i, "template"), group["template"]


def _cluster_problems(cluster_spec: Any, base: str, longest_shutdown_s: float) -> list[Problem]:
    if not isinstance(cluster_spec, dict):
        return []
    problems = []
    version = cluster_spec.get("rayVersion")
    if version is not None and version != installed_ray_version():
        problems.append(Problem(join_path(base, "rayVersion"),
                                f"'{version}' differs from the Ray this project pins "
                                f"({installed_ray_version()})"))
    for path, template in _pod_templates(cluster_spec, base):
        grace = (template.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        if isinstance(grace, int) and grace < longest_shutdown_s:
            problems.append(Problem(
                join_path(path, "spec", "terminationGracePeriodSeconds"),
                f"{grace} s is shorter than the longest graceful_shutdown_timeout_s "
                f"({longest_shutdown_s:g} s): pods would be killed mid-drain"))
    return problems


def _check_rayservice(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = schema_problems(_validator("RayService").iter_errors(doc))
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    raw = spec.get("serveConfigV2")
    longest = 0.0
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
            problems += _secret_env_problems(config, "spec.serveConfigV2")
            if isinstance(config, dict):
                longest = longest_graceful_shutdown_s(config)
    problems += _cluster_problems(spec.get("rayClusterConfig"), "spec.rayClusterConfig", longest)
    return problems


def _check_raycluster(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = schema_problems(_validator("RayCluster").iter_errors(doc))
    return problems + _cluster_problems(doc.get("spec"), "spec", 0.0)


def _check_rayjob(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    report_notes.append(
        "RayJob: no RayJob CRD is vendored (kuberay/crds holds RayService and RayCluster); "
        "checked its spec field names and KubeRay's RayJob rules, and any embedded "
        "rayClusterSpec/submitterPodTemplate against the RayCluster CRD")
    problems = _metadata_problems(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [*problems, Problem("spec", "required mapping is missing")]
    for key in sorted(set(spec) - _RAYJOB_SPEC_FIELDS):
        problems.append(Problem(join_path("spec", key), "additional property not allowed"
                                + suggestion(key, _RAYJOB_SPEC_FIELDS)))
    if not isinstance(spec.get("entrypoint"), str) or not spec["entrypoint"].strip():
        problems.append(Problem("spec.entrypoint", "required: the command the job runs"))
    selector = spec.get("clusterSelector")
    if selector is not None and (not isinstance(selector, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in selector.items())):
        problems.append(Problem("spec.clusterSelector", "must map strings to strings"))
        selector = None
    has_cluster = "rayClusterSpec" in spec
    if bool(selector) == has_cluster:
        problems.append(Problem("spec", "set exactly one of rayClusterSpec and clusterSelector"))
    if selector:
        if not selector.get("ray.io/cluster"):
            problems.append(Problem(join_path("spec", "clusterSelector", "ray.io/cluster"),
                                    "required: the RayCluster's name"))
        if spec.get("suspend"):
            problems.append(Problem("spec.suspend", "not supported with clusterSelector"))
    for key in ("shutdownAfterJobFinishes", "suspend"):
        if key in spec and not isinstance(spec[key], bool):
            problems.append(Problem(join_path("spec", key), "must be a boolean"))
    for key, minimum in (("activeDeadlineSeconds", 1), ("backoffLimit", 0),
                         ("ttlSecondsAfterFinished", 0)):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < minimum):
            problems.append(Problem(join_path("spec", key), f"must be an integer >= {minimum}"))
    if spec.get("ttlSecondsAfterFinished") and not spec.get("shutdownAfterJobFinishes"):
        problems.append(Problem("spec.ttlSecondsAfterFinished",
                                "needs shutdownAfterJobFinishes: true"))
    mode = spec.get("submissionMode")
    if mode is not None and mode not in _SUBMISSION_MODES:
        problems.append(Problem("spec.submissionMode",
                                f"must be one of {sorted(_SUBMISSION_MODES)}"))
    metadata = spec.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(v, str) for v in metadata.values())):
        problems.append(Problem("spec.metadata", "must map strings to strings"))
    runtime_env = spec.get("runtimeEnvYAML")
    if runtime_env is not None:
        try:
            env = yaml.safe_load(runtime_env) if isinstance(runtime_env, str) else None
        except yaml.YAMLError:
            env = None
        if not isinstance(env, dict):
            problems.append(Problem("spec.runtimeEnvYAML", "must be a YAML mapping"))
        else:
            problems += _secret_env_problems(env, "spec.runtimeEnvYAML")
    if has_cluster:
        problems += schema_problems(
            _validator("RayCluster", "spec").iter_errors(spec["rayClusterSpec"]),
            "spec.rayClusterSpec")
    if "submitterPodTemplate" in spec:
        validator = _validator("RayCluster", "spec", "headGroupSpec", "template")
        problems += schema_problems(validator.iter_errors(spec["submitterPodTemplate"]),
                                    "spec.submitterPodTemplate")
    return problems


def _check_core(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    try:
        k8s_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except k8s_validate.ValidationError as error:
        return schema_problems([error])
    except k8s_validate.SchemaNotFoundError:
        return [Problem("", f"no schema for {doc.get('apiVersion')} {doc.get('kind')} "
                            f"in Kubernetes {KUBERNETES_VERSION}")]
    return []


def _check_secret(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = _check_core(doc, report_notes)
    for key in ("data", "stringData"):
        for name, value in (doc.get(key) or {}).items():
            if value not in ("", None):
                problems.append(Problem(join_path(key, name),
                                        "has a value: render Secret templates with empty values"))
    return problems


def _check_configmap(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = _check_core(doc, report_notes)
    if "grafana_dashboard" not in ((doc.get("metadata") or {}).get("labels") or {}):
        return problems
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


def _rule_problems(rule: Any, at: str) -> list[Problem]:
    if not isinstance(rule, dict):
        return [Problem(at, "a rule must be a mapping")]
    problems = [Problem(join_path(at, k), "unknown rule field" + suggestion(k, _RULE_KEYS))
                for k in sorted(set(rule) - _RULE_KEYS)]
    expr = rule.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        problems.append(Problem(join_path(at, "expr"), "required PromQL expression"))
    else:
        unknown = unknown_metrics(expr)
        if unknown:
            problems.append(Problem(join_path(at, "expr"),
                                    f"metrics not in pipeline/metric_catalogue.py: "
                                    f"{sorted(unknown)}"))
    if "record" in rule:
        return problems
    if not isinstance(rule.get("alert"), str) or not rule["alert"]:
        problems.append(Problem(join_path(at, "alert"), "required alert name"))
    if not isinstance(rule.get("for"), str) or not _DURATION.match(rule["for"]):
        problems.append(Problem(join_path(at, "for"), "required duration such as 5m"))
    severity = (rule.get("labels") or {}).get("severity")
    if severity not in _SEVERITIES:
        problems.append(Problem(join_path(at, "labels", "severity"),
                                f"required, one of {sorted(_SEVERITIES)}"))
    annotations = rule.get("annotations") or {}
    for key in _REQUIRED_ANNOTATIONS:
        if not isinstance(annotations.get(key), str) or not annotations[key].strip():
            problems.append(Problem(join_path(at, "annotations", key), "required annotation"))
    runbook = annotations.get("runbook_url")
    if isinstance(runbook, str) and not re.match(r"^https?://[^#\s]+#[a-z0-9-]+$", runbook):
        problems.append(Problem(join_path(at, "annotations", "runbook_url"),
                                "must be an http(s) URL with a #section anchor"))
    return problems


def promtool_problems(groups: list[Any], at: str = "spec.groups") -> list[Problem] | None:
    """``promtool check rules`` on the groups; None when promtool is not installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    detail = _promtool_check(promtool, json.dumps({"groups": groups}, sort_keys=True))
    return [Problem(at, f"promtool: {detail}")] if detail else []


@functools.lru_cache(maxsize=32)
def _promtool_check(promtool: str, rules_json: str) -> str:
    """The first error line of ``promtool check rules`` ("" when the rules are fine)."""
    with tempfile.TemporaryDirectory() as tmp:
        rules_file = Path(tmp) / "rules.yaml"
        rules_file.write_text(yaml.safe_dump(json.loads(rules_json)), encoding="utf-8")
        proc = subprocess.run([promtool, "check", "rules", str(rules_file)],
                              capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode == 0:
        return ""
    output = (proc.stderr or proc.stdout).replace(str(rules_file), "rules")
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return next((ln for ln in lines if "FAILED" not in ln and "Checking" not in ln),
                "promtool check rules failed")


def _check_monitoring(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = _metadata_problems(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [*problems, Problem("spec", "required mapping is missing")]
    kind = doc.get("kind")
    if kind == "PodMonitor":
        endpoints = spec.get("podMetricsEndpoints")
        list_key = "podMetricsEndpoints"
    elif kind == "ServiceMonitor":
        endpoints = spec.get("endpoints")
        list_key = "endpoints"
    else:
        return problems + _check_rule_groups(spec, report_notes)
    if not isinstance(spec.get("selector"), dict):
        problems.append(Problem("spec.selector", "required label selector"))
    if not isinstance(endpoints, list) or not endpoints:
        problems.append(Problem(join_path("spec", list_key), "required non-empty list"))
    else:
        for i, endpoint in enumerate(endpoints):
            if not isinstance(endpoint, dict) or not endpoint.get("port"):
                problems.append(Problem(join_path("spec", list_key, i, "port"),
                                        "required named port"))
    return problems


def _check_rule_groups(spec: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    groups = spec.get("groups")
    if not isinstance(groups, list) or not groups:
        return [Problem("spec.groups", "required non-empty list of rule groups")]
    problems: list[Problem] = []
    names = []
    for gi, group in enumerate(groups):
        at = join_path("spec", "groups", gi)
        if not isinstance(group, dict) or not isinstance(group.get("rules"), list):
            problems.append(Problem(at, "a group needs a name and a list of rules"))
            continue
        names.append(group.get("name"))
        if not isinstance(group.get("name"), str):
            problems.append(Problem(join_path(at, "name"), "required group name"))
        for ri, rule in enumerate(group["rules"]):
            problems += _rule_problems(rule, join_path(at, "rules", ri))
    if len(names) != len(set(names)):
        problems.append(Problem("spec.groups", "group names must be unique"))
    if problems:
        return problems
    promtool = promtool_problems(groups)
    if promtool is None:
        report_notes.append("PrometheusRule: promtool not installed; PromQL syntax not checked "
                            "(apt-get install prometheus)")
        return []
    return promtool


_CHECKS = {
    ("ray.io/v1", "RayService"): _check_rayservice,
    ("ray.io/v1", "RayCluster"): _check_raycluster,
    ("ray.io/v1", "RayJob"): _check_rayjob,
    ("v1", "Secret"): _check_secret,
    ("v1", "ConfigMap"): _check_configmap,
    (_MONITORING_API, "PodMonitor"): _check_monitoring,
    (_MONITORING_API, "ServiceMonitor"): _check_monitoring,
    (_MONITORING_API, "PrometheusRule"): _check_monitoring,
}


def _document_name(doc: Mapping[str, Any], index: int) -> str:
    kind = doc.get("kind") or "?"
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "")
    return f"{kind}/{name}" if name else f"{kind} (document {index + 1})"


def check_document(doc: Any, notes: list[str]) -> list[Problem]:
    if not isinstance(doc, dict):
        return [Problem("", "a manifest must be a mapping")]
    if not doc.get("apiVersion") or not doc.get("kind"):
        return [Problem("", "apiVersion and kind are required")]
    check = _CHECKS.get((doc["apiVersion"], doc["kind"]), _check_core)
    return check(doc, notes) + _secret_env_problems(doc)


# ---------------------------------------------------------------------------- references


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
    for path, template in _pod_templates(cluster, ""):
        node = "head" if path.startswith("headGroupSpec") else "worker"
        sets.append({**((template.get("metadata") or {}).get("labels") or {}),
                     "ray.io/node-type": node})
    return sets


def _selects(selector: Mapping[str, Any], label_sets: list[dict[str, str]]) -> bool:
    wanted = {k: v for k, v in selector.items()
              if not (k.startswith("ray.io/") and k != "ray.io/node-type")}  # KubeRay-managed
    return any(wanted.items() <= labels.items() for labels in label_sets)


def _reference_findings(loaded: list[tuple[str, str, dict[str, Any]]]) -> list[Finding]:
    """Names and selectors that point at nothing among the validated manifests."""
    secrets: dict[tuple[str, str], set[str]] = {}
    services: dict[tuple[str, str], dict[str, str]] = {}
    pods: dict[str, list[dict[str, str]]] = {}
    for _, _, doc in loaded:
        meta = doc.get("metadata") or {}
        ns, name, kind = meta.get("namespace", ""), meta.get("name", ""), doc.get("kind")
        spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
        if kind == "Secret":
            secrets[(ns, name)] = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
        elif kind == "Service":
            services[(ns, name)] = meta.get("labels") or {}
        elif kind == "RayService":
            serve = spec.get("serveService") or {}
            serve_meta = serve.get("metadata") or {}
            services[(ns, serve_meta.get("name") or f"{name}-serve-svc")] = (
                serve_meta.get("labels") or {})
            services[(ns, f"{name}-head-svc")] = {}
        pods.setdefault(ns, []).extend(_pod_label_sets(doc) if kind in (
            "RayService", "RayCluster", "Job") else [])
    findings = []
    for filename, name, doc in loaded:
        ns = (doc.get("metadata") or {}).get("namespace", "")
        kind = doc.get("kind")
        spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
        for path, node in _walk(doc):
            ref = node.get("secretKeyRef")
            if secrets and isinstance(ref, dict):
                keys = secrets.get((ns, ref.get("name", "")))
                if keys is None:
                    findings.append(Finding(filename, name, join_path(path, "secretKeyRef"),
                                            f"Secret '{ref.get('name')}' is not among these "
                                            "manifests"))
                elif ref.get("key") not in keys:
                    findings.append(Finding(filename, name, join_path(path, "secretKeyRef"),
                                            f"Secret '{ref.get('name')}' has no key "
                                            f"'{ref.get('key')}'"))
            backend = node.get("service") if kind == "Ingress" and "service" in node else None
            if isinstance(backend, dict) and (ns, backend.get("name")) not in services:
                findings.append(Finding(filename, name, join_path(path, "service", "name"),
                                        f"no Service '{backend.get('name')}' is created by "
                                        "these manifests"))
        selector = (spec.get("selector") or {}) if kind in (
            "ServiceMonitor", "PodMonitor") else {}
        match = selector.get("matchLabels") or {}
        if kind == "ServiceMonitor" and not any(
                match.items() <= labels.items() for (sns, _), labels in services.items()
                if sns == ns):
            findings.append(Finding(filename, name, "spec.selector.matchLabels",
                                    "selects no Service of these manifests"))
        pod_selector = match if kind == "PodMonitor" else (
            spec.get("selector") if kind == "Service" else None)
        if pod_selector and pods.get(ns) and not _selects(pod_selector, pods[ns]):
            at = "spec.selector.matchLabels" if kind == "PodMonitor" else "spec.selector"
            findings.append(Finding(filename, name, at, "selects no pods of these manifests"))
    return findings


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
            report.errors.append(Finding(filename, "", "", f"invalid YAML: {where}"
                                         f"{getattr(exc, 'problem', None) or exc}"))
            continue
        for index, doc in enumerate(docs):
            name = _document_name(doc, index) if isinstance(doc, dict) else f"document {index + 1}"
            problems = check_document(doc, report.notes)
            report.errors += [Finding(filename, name, p.path, p.message)
                              for p in sorted(set(problems))]
            report.documents.append({"file": filename, "document": name, "ok": not problems})
            if isinstance(doc, dict):
                loaded.append((filename, name, doc))
            meta = doc.get("metadata") if isinstance(doc, dict) else None
            if isinstance(meta, dict) and meta.get("name"):
                key = (str(doc.get("apiVersion")), str(doc.get("kind")),
                       str(meta.get("namespace", "")), str(meta["name"]))
                if key in seen:
                    report.errors.append(Finding(filename, name, "metadata.name",
                                                 f"duplicate of a document in {seen[key]}"))
                seen[key] = filename
    references = _reference_findings(loaded)
    report.errors += references
    for doc_entry in report.documents:
        if any(f.file == doc_entry["file"] and f.document == doc_entry["document"]
               for f in references):
            doc_entry["ok"] = False
    report.notes = sorted(set(report.notes))
    return report


def validate_dir(directory: Path | str) -> Report:
    """Validate every ``*.yaml``/``*.yml`` file in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory}: not a directory")
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not paths:
        raise FileNotFoundError(f"{directory}: no .yaml files to validate")
    return validate_files({p.name: p.read_text(encoding="utf-8") for p in paths})

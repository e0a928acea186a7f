"""Checks for the Prometheus Operator objects: PodMonitor, ServiceMonitor and PrometheusRule.

No CRD is vendored for these, so the checks are structural plus our own alerting rules: every
alert needs a severity, a ``for`` duration and summary/description/runbook annotations (the
runbook URL of a runbook page), and may only query metrics from the catalogue, so an alert
cannot silently watch a metric nothing exports. ``promtool check rules`` adds PromQL syntax
checking when it is installed; its result is cached because the same rules are validated on
every render.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from kuberay.problems import Problem, join_path, suggestion
from kuberay.validation.promql import RAY_SERVE_STATUS_METRICS, unknown_metrics
from kuberay.validation.strict_schemas import metadata_problems

_SEVERITIES = {"critical", "warning", "info"}
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
_REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")


def check_monitoring(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    problems = metadata_problems(doc)
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
                problems.append(
                    Problem(join_path("spec", list_key, i, "port"), "required named port")
                )
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
        report_notes.append(
            "PrometheusRule: promtool not installed; PromQL syntax not checked "
            "(apt-get install prometheus)"
        )
        return []
    return promtool


def _rule_problems(rule: Any, at: str) -> list[Problem]:
    if not isinstance(rule, dict):
        return [Problem(at, "a rule must be a mapping")]
    problems = [
        Problem(join_path(at, k), "unknown rule field" + suggestion(k, _RULE_KEYS))
        for k in sorted(set(rule) - _RULE_KEYS)
    ]
    expr = rule.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        problems.append(Problem(join_path(at, "expr"), "required PromQL expression"))
    else:
        unknown = unknown_metrics(expr, RAY_SERVE_STATUS_METRICS)
        if unknown:
            problems.append(
                Problem(
                    join_path(at, "expr"),
                    f"metrics not in core/metric_catalogue.py: {sorted(unknown)}",
                )
            )
    if "record" in rule:
        return problems
    if not isinstance(rule.get("alert"), str) or not rule["alert"]:
        problems.append(Problem(join_path(at, "alert"), "required alert name"))
    if not isinstance(rule.get("for"), str) or not _DURATION.match(rule["for"]):
        problems.append(Problem(join_path(at, "for"), "required duration such as 5m"))
    severity = (rule.get("labels") or {}).get("severity")
    if severity not in _SEVERITIES:
        problems.append(
            Problem(join_path(at, "labels", "severity"), f"required, one of {sorted(_SEVERITIES)}")
        )
    annotations = rule.get("annotations") or {}
    for key in _REQUIRED_ANNOTATIONS:
        if not isinstance(annotations.get(key), str) or not annotations[key].strip():
            problems.append(Problem(join_path(at, "annotations", key), "required annotation"))
    runbook = annotations.get("runbook_url")
    if isinstance(runbook, str) and not re.match(r"^https?://[^#\s]+/[a-z0-9-]+/$", runbook):
        problems.append(
            Problem(
                join_path(at, "annotations", "runbook_url"),
                "must be the http(s) URL of a runbook page (<base>/<page>/)",
            )
        )
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
        proc = subprocess.run(
            [promtool, "check", "rules", str(rules_file)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if proc.returncode == 0:
        return ""
    output = (proc.stderr or proc.stdout).replace(str(rules_file), "rules")
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return next(
        (ln for ln in lines if "FAILED" not in ln and "Checking" not in ln),
        "promtool check rules failed",
    )

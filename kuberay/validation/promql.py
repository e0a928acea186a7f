"""Which metric names a PromQL expression uses, and which names may be used at all.

Alert rules may only use names from ``core.metric_catalogue`` (as exported: ``ray_`` prefix
and ``_total`` for counters from Ray's agent; ``_bucket/_sum/_count`` for histograms) and Ray
Serve's two status gauges. The dashboards may also use the few Ray-native Serve metrics listed
here (names as in Ray's own Serve Grafana panels).
"""

from __future__ import annotations

import re

from core import metric_catalogue

# Ray-native metrics the dashboards use (exported by Ray's metrics agent, port 8080).
RAY_NATIVE_METRICS = frozenset(
    {
        "ray_serve_deployment_replica_healthy",
        "ray_serve_deployment_queued_queries",
        "ray_serve_num_ongoing_requests_at_replicas",
    }
)

# Ray Serve's status gauges (exported by the Serve controller): the Serve alerts use them.
RAY_SERVE_STATUS_METRICS = frozenset(
    {"ray_serve_application_status", "ray_serve_deployment_status"}
)

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "atan2",
        "inf",
        "nan",
        "start",
        "end",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_IDENT = re.compile(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names in ``expr`` (functions, keywords, label names and durations excluded)."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("1", text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def catalogue_metric_names() -> frozenset[str]:
    """Every series name the catalogue's metrics produce in Prometheus."""
    names: set[str] = set()
    for spec in metric_catalogue.ALL_METRICS:
        if spec.kind == "histogram":
            names.update(spec.exported + suffix for suffix in _HISTOGRAM_SUFFIXES)
        else:
            names.add(spec.exported)
    return frozenset(names)


def unknown_metrics(expr: str, extra: frozenset[str] = frozenset()) -> set[str]:
    return metric_names(expr) - catalogue_metric_names() - extra

"""kuberay/dashboards/*.json: Grafana model, variables, and only known metric names."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from actors import deployment_options as pool_options
from core import metric_catalogue
from kuberay.validation.promql import RAY_NATIVE_METRICS, catalogue_metric_names, metric_names
from kuberay.validation.validate import dashboard_expressions

DASHBOARDS = Path(__file__).resolve().parents[2] / "kuberay" / "dashboards"
NAMES = ("operations", "baseline")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def load(name: str) -> dict:
    return json.loads((DASHBOARDS / f"{name}.json").read_text())


def panels(board: dict) -> list[dict]:
    out, todo = [], list(board["panels"])
    while todo:
        panel = todo.pop(0)
        todo.extend(panel.get("panels") or [])
        out.append(panel)
    return out


def exprs(name: str) -> list[str]:
    return dashboard_expressions(load(name))


@pytest.mark.parametrize("name", NAMES)
def test_grafana_model(name):
    board = load(name)
    assert board["schemaVersion"] >= 36
    assert board["uid"] == f"ai-agents-{name}"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    tenant = variables["tenant"]
    assert tenant["type"] == "query" and tenant["includeAll"] and tenant["multi"]
    assert tenant["datasource"] == DATASOURCE
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE
            assert target["expr"].strip()


@pytest.mark.parametrize("name", NAMES)
def test_queries_use_only_catalogue_or_ray_native_metrics(name):
    allowed = catalogue_metric_names() | RAY_NATIVE_METRICS
    for expr in exprs(name):
        names = metric_names(expr)
        assert names, expr
        assert names <= allowed, (expr, names - allowed)


def test_ray_native_list_is_ray_serve_metrics_only():
    assert all(m.startswith("ray_serve_") for m in RAY_NATIVE_METRICS)
    assert not RAY_NATIVE_METRICS & catalogue_metric_names()


def test_every_catalogue_metric_is_on_a_dashboard():
    used = {n for name in NAMES for e in exprs(name) for n in metric_names(e)}
    for spec in metric_catalogue.ALL_METRICS:
        assert any(n == spec.exported or n.startswith(spec.exported + "_") for n in used), (
            f"{spec.exported} is not on any dashboard"
        )


@pytest.mark.parametrize("name", NAMES)
def test_tenant_variable_filters_tenant_labelled_metrics(name):
    tenant_metrics = {s.exported for s in metric_catalogue.ALL_METRICS if "tenant" in s.labels}
    for expr in exprs(name):
        for metric in metric_names(expr):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            if base in tenant_metrics:
                assert re.search(re.escape(metric) + r'\{[^}]*tenant=~"\$tenant"', expr), expr


def test_serve_panels_filter_on_the_application_name():
    for expr in exprs("operations"):
        if "ray_serve_" in expr:
            assert f'application="{pool_options.APP_NAME}"' in expr, expr


def test_operations_dashboard_covers_the_support_guide():
    titles = " | ".join(p["title"] for p in panels(load("operations"))).lower()
    for words in (
        "api latency p50 / p95 / p99",
        "queue depth",
        "oldest queued",
        "replicas",
        "error rate",
        "success rate",
        "external call latency",
        "external call outcomes",
        "circuit breaker",
        "rate-limit",
        "database",
    ):
        assert words in titles, words
    latency = next(
        p for p in panels(load("operations")) if p["title"] == "API latency p50 / p95 / p99"
    )
    assert [t["expr"][:24] for t in latency["targets"]] == [
        "histogram_quantile(0.5, ",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
    ]


def test_baseline_dashboard_covers_the_success_criteria():
    titles = " | ".join(p["title"] for p in panels(load("baseline"))).lower()
    for words in (
        "average feedback rating",
        "positive feedback share",
        "p95 end-to-end",
        "throughput",
        "success rate",
    ):
        assert words in titles, words


def test_every_query_is_valid_promql(promtool, tmp_path):
    """promtool parses each query as a recording rule (Grafana variables substituted)."""
    substitutions = {"$__rate_interval": "5m", "$__range": "1h", "$tenant": ".*"}
    rules = []
    for name in NAMES:
        for i, expr in enumerate(exprs(name)):
            for var, value in substitutions.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, expr
            rules.append({"record": f"dashboard:{name}:{i}", "expr": expr})
    path = tmp_path / "dashboard_queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

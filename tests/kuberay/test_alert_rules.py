"""kuberay/alerts.yaml: promtool checks and unit tests, metric names, runbooks.

promtool is required (Debian package `prometheus`); without it these tests fail, not skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from kuberay.validation.promql import (
    RAY_SERVE_STATUS_METRICS,
    catalogue_metric_names,
    metric_names,
)

KUBERAY = Path(__file__).resolve().parents[2] / "kuberay"
ALERTS = KUBERAY / "alerts.yaml"
ALERT_TESTS = KUBERAY / "alerts_test.yaml"
RUNBOOK_BASE = "https://example.github.io/ai-agents/runbooks/"
EXPECTED_ALERTS = {
    "HighQueueDepth": "high-queue-depth",
    "WorkerFailures": "worker-failures",
    "HighAPILatency": "high-api-latency",
    "LowSuccessRate": "low-success-rate",
    "TenantIsolationViolation": "tenant-isolation-violation",
    "DatabaseConnectionIssues": "database-connection-issues",
    "CircuitBreakerOpen": "circuit-breaker-open",
    "HighEnhancementLatency": "high-enhancement-latency",
    "LowFeedbackRating": "low-feedback-rating",
    "LowSuggestionHitRate": "low-suggestion-hit-rate",
    "TenantBudgetNearlySpent": "tenant-budget-nearly-spent",
    "LLMCreditsLow": "llm-credits-low",
    "MetricsNotScraped": "metrics-not-scraped",
    "ServeApplicationNotRunning": "serve-application-not-running",
    "ServeDeploymentUnhealthy": "serve-deployment-unhealthy",
}


def rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def run(promtool: str, *args: str, cwd: Path = KUBERAY) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", duration))


def test_promtool_check_rules(promtool):
    result = run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool):
    result = run(promtool, "test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_catch_a_wrong_threshold(promtool, tmp_path):
    """The promtool tests can fail: raising a threshold makes the firing case fail."""
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    text = ALERTS.read_text()
    assert "ai_agents_queue_depth)) > 50" in text
    (tmp_path / ALERTS.name).write_text(
        text.replace("ai_agents_queue_depth)) > 50", "ai_agents_queue_depth)) > 500")
    )
    result = run(promtool, "test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "HighQueueDepth" in result.stdout + result.stderr


def test_exactly_the_support_guide_alerts():
    names = [r["alert"] for r in rules()]
    assert sorted(names) == sorted(EXPECTED_ALERTS)


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_rule_has_severity_annotations_and_runbook(rule):
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"].strip()
    assert rule["annotations"]["description"].strip()
    assert rule["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}{EXPECTED_ALERTS[rule['alert']]}/"
    assert re.fullmatch(r"\d+[smh]", rule["for"])


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_rule_uses_only_catalogue_metrics(rule):
    names = metric_names(rule["expr"])
    assert names, rule["expr"]
    allowed = catalogue_metric_names() | RAY_SERVE_STATUS_METRICS
    assert names <= allowed, names - allowed


def test_support_guide_thresholds():
    by_name = {r["alert"]: r for r in rules()}
    assert by_name["HighQueueDepth"]["expr"].endswith("> 50")
    assert by_name["HighQueueDepth"]["for"] == "5m"
    assert by_name["HighAPILatency"]["expr"].strip().endswith("> 5")
    assert "> 0.05" in by_name["LowSuccessRate"]["expr"]  # success rate below 95%
    assert by_name["HighEnhancementLatency"]["expr"].strip().endswith("> 60")
    assert by_name["LowFeedbackRating"]["expr"].endswith("< 3")
    assert by_name["LowFeedbackRating"]["for"] == "1h"
    assert by_name["LowSuggestionHitRate"]["expr"].endswith("< 0.3")
    assert by_name["CircuitBreakerOpen"]["expr"].endswith("== 2")
    assert "ai_agents_llm_budget_used_ratio) >= 0.8" in by_name["TenantBudgetNearlySpent"]["expr"]
    assert "< on () max(ray_ai_agents_llm_credit_low_usd)" in by_name["LLMCreditsLow"]["expr"]
    assert by_name["TenantIsolationViolation"]["labels"]["severity"] == "critical"
    assert by_name["DatabaseConnectionIssues"]["labels"]["severity"] == "critical"


def test_every_alert_has_a_firing_and_a_quiet_case():
    durations = {r["alert"]: seconds(r["for"]) for r in rules()}
    fires, quiet = set(), set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        checks: dict[str, list] = {}
        for check in case.get("alert_rule_test", []):
            checks.setdefault(check["alertname"], []).append(check)
        for name, items in checks.items():
            if any(c["exp_alerts"] for c in items):
                fires.add(name)
            elif any(seconds(c["eval_time"]) >= durations[name] for c in items):
                quiet.add(name)  # healthy series, evaluated after the `for` period
    assert fires == set(EXPECTED_ALERTS)
    assert quiet == set(EXPECTED_ALERTS)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('sum by (le, route) (rate(a_bucket{route=~"/x.*"}[5m])) > 5', {"a_bucket"}),
        ("histogram_quantile(0.95, sum(rate(b_bucket[$__rate_interval])) by (le))", {"b_bucket"}),
        ("x unless x offset 10m or absent(y) and on () z >= 1e3", {"x", "y", "z"}),
        ('(sum(c{status="failed",tenant=~"$tenant"}) or vector(0)) / ignoring(t) d', {"c", "d"}),
    ],
)
def test_metric_name_extraction(expr, expected):
    assert metric_names(expr) == expected

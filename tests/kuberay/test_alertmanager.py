"""Alertmanager routing rendered by `ai-agents kuberay render` (OUT/alertmanager/): amtool
accepts the plain alertmanager.yml, every alert of kuberay/alerts.yaml reaches the receivers
its severity calls for (in both the plain file and the AlertmanagerConfig), and a real
Alertmanager inhibits the symptom alerts while DatabaseConnectionIssues fires."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from core.ports import free_port
from kuberay.manifests import monitoring
from kuberay.manifests.alerting import (
    APPLICATION_DOWN_SYMPTOMS,
    DATABASE_SYMPTOMS,
    PAGERDUTY_KEY,
    SLACK_KEY,
    SMTP_PASSWORD_KEY,
)
from kuberay.values import PRODUCTION_VALUES_FILE
from kuberay.values_files import load_values

EXPECTED_RECEIVERS = {
    "critical": "pagerduty,email-digest",
    "warning": "slack,email-digest",
    "info": "email-digest",
}
ALERTS = [
    (rule["alert"], rule["labels"]["severity"])
    for group in monitoring.alert_groups()
    for rule in group["rules"]
    if "alert" in rule
]


@pytest.fixture(scope="module")
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.fail("amtool is not installed: apt-get install -y prometheus-alertmanager")
    return path


@pytest.fixture(scope="module")
def alerting_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    result = subprocess.run(
        [
            "ai-agents",
            "kuberay",
            "render",
            "--values",
            str(PRODUCTION_VALUES_FILE),
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return out / "alertmanager"


def _routes_test(amtool: str, config: Path, labels: dict[str, str]) -> str:
    result = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_check_config_accepts_the_plain_config(amtool: str, alerting_dir: Path):
    result = subprocess.run(
        [amtool, "check-config", str(alerting_dir / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout and "3 receivers" in result.stdout


@pytest.mark.parametrize(("alert", "severity"), ALERTS)
def test_each_alert_routes_by_severity(amtool: str, alerting_dir: Path, alert: str, severity: str):
    labels = {
        "alertname": alert,
        "severity": severity,
        "namespace": "ai-agents-production",
        "tenant": "acme",
    }
    assert (
        _routes_test(amtool, alerting_dir / "alertmanager.yml", labels)
        == EXPECTED_RECEIVERS[severity]
    )


def _plain_from_crd(crd: dict[str, Any]) -> dict[str, Any]:
    """The operator's translation of an AlertmanagerConfig route, in the small subset we use
    (camelCase keys, matcher objects); receivers become empty named receivers."""

    def snake(key: str) -> str:
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)

    def route(node: dict[str, Any]) -> dict[str, Any]:
        out = {snake(k): v for k, v in node.items() if k not in ("matchers", "routes")}
        if "matchers" in node:
            out["matchers"] = [
                f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in node["matchers"]
            ]
        if "routes" in node:
            out["routes"] = [route(child) for child in node["routes"]]
        return out

    return {
        "route": route(crd["spec"]["route"]),
        "receivers": [{"name": r["name"]} for r in crd["spec"]["receivers"]],
    }


def test_alertmanagerconfig_routes_the_same_and_references_secrets(
    amtool: str, alerting_dir: Path, tmp_path: Path
):
    crd = yaml.safe_load((alerting_dir / "alertmanagerconfig.yaml").read_text())
    values = load_values(PRODUCTION_VALUES_FILE)
    assert crd["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    assert crd["metadata"]["namespace"] == values.namespace
    translated = tmp_path / "from-crd.yml"
    translated.write_text(yaml.safe_dump(_plain_from_crd(crd)))
    for alert, severity in ALERTS:
        labels = {"alertname": alert, "severity": severity, "namespace": values.namespace}
        assert _routes_test(amtool, translated, labels) == EXPECTED_RECEIVERS[severity], alert
    receivers = {r["name"]: r for r in crd["spec"]["receivers"]}
    secret = values.monitoring.alerting.secret_name
    assert receivers["pagerduty"]["pagerdutyConfigs"][0]["routingKey"] == {
        "name": secret,
        "key": PAGERDUTY_KEY,
    }
    assert receivers["slack"]["slackConfigs"][0]["apiURL"] == {"name": secret, "key": SLACK_KEY}
    assert receivers["email-digest"]["emailConfigs"][0]["authPassword"] == {
        "name": secret,
        "key": SMTP_PASSWORD_KEY,
    }
    database, application = crd["spec"]["inhibitRules"]
    assert database["sourceMatch"] == [
        {"name": "alertname", "value": "DatabaseConnectionIssues", "matchType": "="}
    ]
    assert application["sourceMatch"] == [
        {"name": "alertname", "value": "ServeApplicationNotRunning", "matchType": "="}
    ]
    assert database["equal"] == application["equal"] == ["namespace"]


def test_rendered_alert_rules_carry_the_namespace_the_alertmanagerconfig_matches(
    alerting_dir: Path,
):
    """The operator confines an AlertmanagerConfig to alerts labelled with its namespace."""
    monitoring = list(
        yaml.safe_load_all((alerting_dir.parent / "base" / "monitoring.yaml").read_text())
    )
    (rule,) = [doc for doc in monitoring if doc and doc["kind"] == "PrometheusRule"]
    namespace = load_values(PRODUCTION_VALUES_FILE).namespace
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            assert alert["labels"]["namespace"] == namespace, alert["alert"]


@pytest.fixture
def running_alertmanager(alerting_dir: Path, tmp_path: Path):
    """The rendered routing and inhibition on a real Alertmanager bound to loopback; the
    receivers are swapped for a loopback webhook so nothing leaves the machine."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail("Alertmanager is not installed: apt-get install -y prometheus-alertmanager")
    config = yaml.safe_load((alerting_dir / "alertmanager.yml").read_text())
    sink = f"http://127.0.0.1:{free_port()}/"
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": sink}]} for r in config["receivers"]
    ]
    config["global"] = {"resolve_timeout": "5m"}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={path}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read()[-2000:]
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Alertmanager not ready in 30 s"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def _post_and_settle(url: str, alerts: list[dict[str, Any]], inhibited: set[str]) -> dict:
    """Post ``alerts``; their state once every key in ``inhibited`` is inhibited (keys are
    ``alertname@namespace``)."""
    response = httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=5)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 20
    while True:
        listed = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
        state = {
            f"{a['labels']['alertname']}@{a['labels']['namespace']}": a["status"] for a in listed
        }
        if len(state) == len(alerts) and all(state[k]["inhibitedBy"] for k in inhibited):
            return state
        assert time.monotonic() < deadline, json.dumps(state)
        time.sleep(0.5)


def _alert(name: str, namespace: str = "ai-agents-production") -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": dict(ALERTS)[name], "namespace": namespace}}


def test_database_outage_inhibits_its_symptoms_only(running_alertmanager: str):
    names = [
        "DatabaseConnectionIssues",
        *DATABASE_SYMPTOMS,
        "TenantIsolationViolation",
        "CircuitBreakerOpen",
    ]
    other = "HighQueueDepth@ai-agents-staging"  # another deployment's symptom
    state = _post_and_settle(
        running_alertmanager,
        [_alert(n) for n in names] + [_alert("HighQueueDepth", "ai-agents-staging")],
        {f"{n}@ai-agents-production" for n in DATABASE_SYMPTOMS},
    )
    for name in DATABASE_SYMPTOMS:
        assert state[f"{name}@ai-agents-production"]["state"] == "suppressed", name
    for name in ("DatabaseConnectionIssues", "TenantIsolationViolation", "CircuitBreakerOpen"):
        key = f"{name}@ai-agents-production"
        assert state[key]["state"] == "active" and not state[key]["inhibitedBy"], name
    assert state[other]["state"] == "active", "equal: [namespace] keeps other deployments apart"


def test_application_down_inhibits_its_symptoms(running_alertmanager: str):
    names = ["ServeApplicationNotRunning", *APPLICATION_DOWN_SYMPTOMS, "TenantIsolationViolation"]
    state = _post_and_settle(
        running_alertmanager,
        [_alert(n) for n in names],
        {f"{n}@ai-agents-production" for n in APPLICATION_DOWN_SYMPTOMS},
    )
    assert state["ServeApplicationNotRunning@ai-agents-production"]["state"] == "active"
    assert state["TenantIsolationViolation@ai-agents-production"]["state"] == "active"
    assert {"ServeDeploymentUnhealthy", "MetricsNotScraped"} <= set(APPLICATION_DOWN_SYMPTOMS)


def test_misspelt_alerting_value_is_rejected_with_its_path():
    from kuberay.problems import KubeRayConfigError
    from kuberay.values_files import values_from_dict

    with pytest.raises(KubeRayConfigError) as error:
        values_from_dict({"monitoring": {"alerting": {"slackChanel": "#x"}}}, "values.yaml")
    assert "monitoring.alerting.slackChanel: unknown field" in error.value.one_line()

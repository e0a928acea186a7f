"""`ai-agents kuberay render` schedules `ai-agents ranking fit` as a CronJob: the values knob
(schedule, time zone, off), validation of the schedule at render and in `kuberay validate`, the
restricted pod, secrets as files, a NetworkPolicy under which its pods reach only DNS and
PostgreSQL, the kustomize base, and the rendered command run for real against PostgreSQL with
the secret files its volume projects."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuberay.kustomize import output_files
from kuberay.manifests.ranking_cronjob import RANKING_FIT_SECRET_KEYS
from kuberay.problems import KubeRayConfigError
from kuberay.render import render
from kuberay.schedule_values import cron_problem
from kuberay.validation.network_rules import Endpoint, allowed
from kuberay.validation.validate import validate_files
from kuberay.values import PRODUCTION_VALUES_FILE, Values
from kuberay.values_files import load_values, values_from_dict

FILE = "cronjob-ranking-fit.yaml"


def _cronjob(rendered: dict[str, str]) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(rendered[FILE]) if d]
    return doc


def _pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]


def test_the_default_render_schedules_a_daily_refit(default_render) -> None:
    cronjob = _cronjob(default_render)
    assert cronjob["kind"] == "CronJob" and cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("17 3 * * *", "Etc/UTC")
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = _pod(cronjob)["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["ai-agents", "ranking", "fit", "--json"]
    assert container["image"] == Values().image.reference  # the service's own image
    assert pod["serviceAccountName"] == "ai-agents"
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    # secrets only as files: the service role's URL (never the owner's), nothing by value
    env = {e["name"]: e for e in container["env"]}
    assert env["AI_AGENTS_SECRETS_DIR"]["value"] == "/etc/ai-agents/secrets"
    assert not any(k in env for k in RANKING_FIT_SECRET_KEYS)
    (projected,) = [v["projected"] for v in pod["volumes"] if "projected" in v]
    keys = {i["key"] for s in projected["sources"] for i in s["secret"]["items"]}
    assert keys == set(RANKING_FIT_SECRET_KEYS)
    assert "AI_AGENTS_MIGRATION_DATABASE_URL" not in default_render[FILE]
    assert "AI_AGENTS_LLM_API_KEY" not in default_render[FILE]


def test_the_schedule_is_a_values_knob_and_can_be_turned_off() -> None:
    weekly = render(
        values_from_dict(
            {
                "rankingFit": {
                    "schedule": "30 2 * * SUN",
                    "timeZone": "Europe/Berlin",
                    "extraArgs": ["--no-deployment"],
                }
            }
        )
    )
    spec = _cronjob(weekly)["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("30 2 * * SUN", "Europe/Berlin")
    assert _pod(_cronjob(weekly))["spec"]["containers"][0]["command"][-1] == "--no-deployment"
    off = render(values_from_dict({"rankingFit": {"enabled": False}}))
    assert FILE not in off
    assert FILE not in output_files(Values(), off)["base/kustomization.yaml"]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("17 3 * *", "has 4 fields"),
        ("61 3 * * *", "minute '61' is not in 0-59"),
        ("0 24 * * *", "hour '24' is not in 0-23"),
        ("0 3 0 * *", "day of month '0' is not in 1-31"),
        ("0 3 * FOO *", "month 'FOO' is not in 1-12"),
        ("0 3 * * 5-1", "range '5-1' runs backwards"),
        ("*/0 * * * *", "step '0'"),
        ("@fortnightly", "is not one of"),
        ("TZ=Europe/Berlin 0 3 * * *", "timeZone"),
    ],
)
def test_a_bad_schedule_fails_the_render_with_its_path(schedule: str, message: str) -> None:
    with pytest.raises(KubeRayConfigError) as error:
        render(values_from_dict({"rankingFit": {"schedule": schedule}}))
    assert "rankingFit.schedule" in str(error.value) and message in str(error.value)


@pytest.mark.parametrize(
    "schedule",
    ["17 3 * * *", "*/15 * * * *", "0 0-6/2 1,15 JAN-MAR MON-FRI", "@daily", "0 3 ? * *"],
)
def test_good_schedules_pass(schedule: str) -> None:
    assert cron_problem(schedule) is None


def test_validate_refuses_a_hand_edited_cronjob(default_render) -> None:
    edited = _cronjob(default_render)
    edited["spec"]["schedule"] = "0 25 * * *"
    container = _pod(edited)["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    container["env"].append({"name": "AI_AGENTS_DATABASE_URL", "value": "postgresql://x"})
    report = validate_files({**default_render, FILE: yaml.safe_dump(edited)})
    found = {(f.file, f.path) for f in report.errors}
    assert (FILE, "spec.schedule") in found
    base = "spec.jobTemplate.spec.template.spec.containers[0]"
    assert (FILE, f"{base}.securityContext.allowPrivilegeEscalation") in found  # restricted
    assert any(f.file == FILE and f.path.endswith("].value") for f in report.errors)  # by value
    assert validate_files(default_render).ok


def test_its_pods_reach_only_dns_and_postgresql(production_render) -> None:
    policies = [
        d
        for d in yaml.safe_load_all(production_render["networkpolicy.yaml"])
        if d and d["kind"] == "NetworkPolicy"
    ]
    pod_labels = _pod(_cronjob(production_render))["metadata"]["labels"]
    ns = "ai-agents-production"
    fit = Endpoint("ranking-fit", ns, pod_labels, "10.244.1.10")
    head = Endpoint(
        "head",
        ns,
        {**pod_labels, "app.kubernetes.io/component": "ray-head", "ray.io/node-type": "head"},
        "10.244.1.11",
    )
    dns = Endpoint("dns", "kube-system", {"k8s-app": "kube-dns"}, "10.96.0.10")
    postgres = Endpoint("postgres", "db", {}, "10.20.0.5")  # values' egress.postgres block
    llm = Endpoint("openrouter", "internet", {}, "104.18.2.115")
    sdp = Endpoint("sdp", "vpn", {}, "10.100.0.20")
    collector = Endpoint(
        "otel", "observability", {"app.kubernetes.io/name": "otel-collector"}, "10.244.9.9"
    )
    everyone = [fit, head, dns, postgres, llm, sdp, collector]

    def can(source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return allowed(source, target, port, policies, everyone, protocol)

    assert can(fit, postgres, 5432)
    assert can(fit, dns, 53, "UDP")
    for target, port in [(llm, 443), (sdp, 8080), (sdp, 443), (collector, 4318), (head, 6379)]:
        assert not can(fit, target, port), (target.name, port)
    assert not can(head, fit, 8000)  # nothing reaches it
    assert can(head, postgres, 5432)  # the same policies still let the Ray pods work


def _built(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_kustomize_builds_it_and_promotes_its_image(tmp_path: Path, kubectl: str) -> None:
    values = load_values(PRODUCTION_VALUES_FILE)
    for path, text in output_files(values, render(values)).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    overlay = tmp_path / "overlays" / "production" / "kustomization.yaml"
    data = yaml.safe_load(overlay.read_text())
    data["images"][0]["newTag"] = "9.9.9"
    overlay.write_text(yaml.safe_dump(data))
    built = _built(kubectl, overlay.parent)
    (cronjob,) = [d for d in built if d["kind"] == "CronJob"]
    assert cronjob["metadata"]["name"] == "ai-agents-ranking-fit"
    image = _pod(cronjob)["spec"]["containers"][0]["image"]
    assert image == f"{values.image.repository}:9.9.9"


async def test_the_rendered_command_refits_against_postgresql_with_the_projected_files(
    default_render, database, encryption_keys, tmp_path: Path
) -> None:
    """What the pod runs, run here: its command and plain env, with a secrets directory holding
    exactly the files its volume projects, against the session's PostgreSQL."""
    pod = _pod(_cronjob(default_render))["spec"]
    (container,) = pod["containers"]
    secrets = {
        "AI_AGENTS_DATABASE_URL": database.service_url,
        "AI_AGENTS_ENCRYPTION_KEYS": encryption_keys,
        "AI_AGENTS_ADMIN_TOKEN": "adm-cronjob-test",
    }
    (projected,) = [v["projected"] for v in pod["volumes"] if "projected" in v]
    for source in projected["sources"]:
        for item in source["secret"]["items"]:
            (tmp_path / item["path"]).write_text(secrets[item["key"]])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    env.update({e["name"]: e["value"] for e in container["env"]})
    env["AI_AGENTS_SECRETS_DIR"] = str(tmp_path)
    result = await asyncio.to_thread(
        subprocess.run, container["command"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert results and all("scope" in r for r in results)
    assert encryption_keys not in result.stdout + result.stderr
    assert database.service_url not in result.stdout + result.stderr

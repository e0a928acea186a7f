"""Every alert's runbook_url resolves: its #anchor is a heading of README.md (GitHub's anchor
rules), the URL base is the project's documented Runbooks URL, and `monitoring.runbookBaseUrl`
moves every link to another host while keeping the anchors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from kuberay.manifests import monitoring
from kuberay.render import render
from kuberay.values_files import values_from_dict

ROOT = Path(__file__).resolve().parents[2]
RULES = [rule for group in monitoring.alert_groups() for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub generates for headings: lower case, punctuation dropped, spaces → '-'
    (code fences skipped, so '# comment' lines in examples are not headings)."""
    anchors: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        match = re.match(r"^#{1,6} (.+)$", line)
        if match and not in_fence:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_anchor_rules_match_githubs():
    assert github_anchors("## Deploying on Kubernetes (KubeRay)\n#### High queue depth\n") == {
        "deploying-on-kubernetes-kuberay",
        "high-queue-depth",
    }


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule["alert"])
def test_runbook_anchor_is_a_readme_heading(rule):
    url = rule["annotations"]["runbook_url"]
    base, _, anchor = url.partition("#")
    assert anchor in github_anchors((ROOT / "README.md").read_text()), url
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert base == urls["Runbooks"].partition("#")[0]


def test_runbook_base_url_from_values_keeps_the_anchors():
    base = "https://git.msp.example/platform/ai-agents/-/blob/main/README.md"
    values = values_from_dict({"monitoring": {"runbookBaseUrl": base}}, "values.yaml")
    docs = list(yaml.safe_load_all(render(values)["monitoring.yaml"]))
    (rule,) = [doc for doc in docs if doc and doc["kind"] == "PrometheusRule"]
    rendered = {
        r["alert"]: r["annotations"]["runbook_url"]
        for group in rule["spec"]["groups"]
        for r in group["rules"]
    }
    for source in RULES:
        anchor = source["annotations"]["runbook_url"].partition("#")[2]
        assert rendered[source["alert"]] == f"{base}#{anchor}"


def test_runbook_base_url_must_not_carry_a_fragment():
    from kuberay.problems import KubeRayConfigError

    with pytest.raises(KubeRayConfigError, match="runbookBaseUrl"):
        values_from_dict(
            {"monitoring": {"runbookBaseUrl": "https://x.example/README.md#a"}}, "values.yaml"
        )

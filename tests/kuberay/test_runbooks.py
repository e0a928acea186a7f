"""Every alert's runbook_url resolves: it is the project's documented Runbooks URL (pyproject.toml)
plus the alert's page, the page exists under docs/runbooks/ (the site builds it at
`runbooks/<page>/`, mkdocs.yml's directory URLs), and `monitoring.runbookBaseUrl` moves every
link to another base while keeping each alert's page."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from kuberay.manifests import monitoring
from kuberay.render import render
from kuberay.values_files import values_from_dict

ROOT = Path(__file__).resolve().parents[2]
RULES = [rule for group in monitoring.alert_groups() for rule in group["rules"] if "alert" in rule]
RUNBOOKS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Runbooks"]


def page_of(url: str) -> str:
    """`https://…/runbooks/high-queue-depth/` → `high-queue-depth`."""
    assert url.startswith(RUNBOOKS), f"{url} is not under the Runbooks URL {RUNBOOKS}"
    page = url.removeprefix(RUNBOOKS)
    assert page.endswith("/") and page.count("/") == 1, f"{url}: not <Runbooks URL><page>/"
    return page.rstrip("/")


def test_the_runbooks_url_is_the_docs_sites() -> None:
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    site_url = yaml.safe_load(
        (ROOT / "mkdocs.yml").read_text().replace("!!python/name:", "")
    )["site_url"]  # fmt: skip
    assert urls["Documentation"] == site_url
    assert f"{site_url}runbooks/" == RUNBOOKS


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule["alert"])
def test_runbook_url_is_a_page_of_the_docs(rule) -> None:
    page = page_of(rule["annotations"]["runbook_url"])
    document = ROOT / "docs" / "runbooks" / f"{page}.md"
    assert document.is_file(), f"{rule['alert']}: no runbook page {document.relative_to(ROOT)}"
    assert f"`{rule['alert']}`" in document.read_text(), "the page names its alert"
    index = (ROOT / "docs" / "runbooks" / "index.md").read_text()
    assert f"[`{rule['alert']}`]({page}.md)" in index, "the runbooks index lists the alert"


def test_runbook_base_url_from_values_keeps_the_pages() -> None:
    base = "https://docs.msp.example/platform/ai-agents/runbooks"
    values = values_from_dict({"monitoring": {"runbookBaseUrl": base}}, "values.yaml")
    docs = list(yaml.safe_load_all(render(values)["monitoring.yaml"]))
    (rule,) = [doc for doc in docs if doc and doc["kind"] == "PrometheusRule"]
    rendered = {
        r["alert"]: r["annotations"]["runbook_url"]
        for group in rule["spec"]["groups"]
        for r in group["rules"]
    }
    assert set(rendered) == {source["alert"] for source in RULES}
    for source in RULES:
        page = page_of(source["annotations"]["runbook_url"])
        assert rendered[source["alert"]] == f"{base}/{page}/"


def test_runbook_base_url_must_not_carry_a_fragment() -> None:
    from kuberay.problems import KubeRayConfigError

    with pytest.raises(KubeRayConfigError, match="runbookBaseUrl"):
        values_from_dict(
            {"monitoring": {"runbookBaseUrl": "https://x.example/runbooks#a"}}, "values.yaml"
        )

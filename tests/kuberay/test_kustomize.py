"""`ai-agents kuberay render` output is a kustomize base plus a production overlay that
`kubectl kustomize` builds offline into exactly the objects meant to live in the cluster."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuberay.kustomize import MIGRATION_JOB_ANNOTATIONS, NOT_DESIRED_STATE
from kuberay.values import PRODUCTION_VALUES_FILE
from kuberay.values_files import load_values


def _objects(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"].get("name") or doc["metadata"]["generateName"]


def _images(doc: dict[str, Any]) -> list[str]:
    """Every container image anywhere in an object (RayService nests pod templates)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("containers", "initContainers") and isinstance(value, list):
                    found.extend(c["image"] for c in value if "image" in c)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    return found


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rendered by the real CLI, as the README's reader runs it."""
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
    return out


def _build(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return _objects(result.stdout)


def test_base_builds_every_desired_object_and_nothing_else(rendered_dir: Path, kubectl: str):
    built = {_key(doc) for doc in _build(kubectl, rendered_dir / "base")}
    expected: set[tuple[str, str]] = set()
    for path in sorted((rendered_dir / "base").glob("*.yaml")):
        if path.name != "kustomization.yaml" and path.name not in NOT_DESIRED_STATE:
            expected |= {_key(doc) for doc in _objects(path.read_text())}
    assert built == expected
    assert ("RayService", "ai-agents") in built and ("Job", "ai-agents-migrate") in built
    assert not {kind for kind, _ in built} & {"Secret", "RayJob"}


def test_production_overlay_adds_sync_hooks_and_keeps_the_image(rendered_dir: Path, kubectl: str):
    objects = _build(kubectl, rendered_dir / "overlays" / "production")
    base = {_key(doc) for doc in _build(kubectl, rendered_dir / "base")}
    assert {_key(doc) for doc in objects} == base
    (job,) = [doc for doc in objects if doc["kind"] == "Job"]
    assert MIGRATION_JOB_ANNOTATIONS.items() <= job["metadata"]["annotations"].items()
    reference = load_values(PRODUCTION_VALUES_FILE).image.reference
    images = [image for doc in objects for image in _images(doc)]
    assert len(images) >= 3 and set(images) == {reference}


def test_overlay_image_promotion_reaches_the_rayservice_pods(
    rendered_dir: Path, kubectl: str, tmp_path: Path
):
    """`kustomize edit set image` (here: editing `images`) changes every Ray container too,
    although RayService is a custom resource: promotion works without re-rendering."""
    copy = tmp_path / "rendered"
    subprocess.run(["cp", "-r", str(rendered_dir), str(copy)], check=True)
    overlay = copy / "overlays" / "production" / "kustomization.yaml"
    data = yaml.safe_load(overlay.read_text())
    data["images"][0]["newTag"] = "9.9.9-rc1"
    overlay.write_text(yaml.safe_dump(data))
    objects = _build(kubectl, overlay.parent)
    (service,) = [doc for doc in objects if doc["kind"] == "RayService"]
    repository = load_values(PRODUCTION_VALUES_FILE).image.repository
    assert set(_images(service)) == {f"{repository}:9.9.9-rc1"}


def test_rerender_removes_files_of_the_flat_layout(rendered_dir: Path, tmp_path: Path):
    """An output directory rendered by an older version (manifests at the top) is cleaned up,
    so `kubectl apply -f DIR` cannot pick up a stale copy."""
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "rayservice.yaml"
    stale.write_text((rendered_dir / "base" / "rayservice.yaml").read_text())
    mine = out / "notes.yaml"
    mine.write_text("kept: true\n")
    result = subprocess.run(
        ["ai-agents", "kuberay", "render", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and mine.exists()
    assert (out / "base" / "rayservice.yaml").exists()

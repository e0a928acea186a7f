"""Shared fixtures for the KubeRay manifest tests (rendering takes a fraction of a second)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kuberay.render import render
from kuberay.values import PRODUCTION_VALUES_FILE
from kuberay.values_files import load_values


@pytest.fixture(scope="session")
def default_render() -> dict[str, str]:
    return render()


@pytest.fixture(scope="session")
def production_render() -> dict[str, str]:
    return render(load_values(PRODUCTION_VALUES_FILE))


@pytest.fixture(scope="session")
def production_with_gcs_ft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A values file an operator layers on the production values to turn GCS FT on."""
    path = tmp_path_factory.mktemp("values") / "gcs-ft.yaml"
    path.write_text("gcsFaultTolerance:\n  enabled: true\n")
    return path


@pytest.fixture(scope="session")
def production_ft_render(production_with_gcs_ft: Path) -> dict[str, str]:
    return render(load_values(PRODUCTION_VALUES_FILE, production_with_gcs_ft))


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: run `apt-get update && apt-get install -y "
            "prometheus` (Debian package) so the alert rules can be checked"
        )
    return path


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not installed: `kubectl kustomize` checks the rendered "
            "kustomizations offline (apt-get install -y kubectl)"
        )
    return path

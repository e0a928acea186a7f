"""The Dockerfile builds what the manifests name: Ray's Python 3.11 image at the Ray version
pyproject.toml pins, the package version as the default tag, the lock applied, a numeric
non-root user at the end; hadolint (a dev dependency) finds nothing. There is no container
engine here, so the image is not built; the wheel + lock install it performs is exercised by
tests/e2e/test_rendered_serve_config.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

from core.version import package_version
from kuberay.values import Values

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _pinned(name: str) -> str:
    for spec in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        match = re.fullmatch(rf"{name}(\[[a-z,]+\])?==(\S+)", spec)
        if match:
            return match.group(2)
    raise AssertionError(f"{name} is not pinned exactly in pyproject.toml")


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint missing: pip install -c constraints.txt -e '.[dev]'"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_rays_python_311_image_at_the_pinned_ray() -> None:
    (base,) = re.findall(r"^ARG RAY_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert base == f"rayproject/ray:{_pinned('ray')}-py311"
    assert Values().ray_version == _pinned("ray")
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert froms == ["${RAY_IMAGE}", "${RAY_IMAGE}"]  # builder and final, same base


def test_final_stage_installs_the_wheel_with_the_lock_as_non_root() -> None:
    final = DOCKERFILE.split("\nFROM ${RAY_IMAGE}\n", 1)[1]
    assert "--no-index" in final and "-c /tmp/constraints.txt" in final
    assert "pip wheel" not in final  # building happens in the builder stage only
    (version,) = re.findall(r"^ARG VERSION=(\S+)$", final, re.MULTILINE)
    assert version == package_version()
    users = re.findall(r"^USER (\S+)$", final, re.MULTILINE)
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users
    labels = set(re.findall(r"(org\.opencontainers\.image\.[a-z.]+)=", final))
    assert {
        "org.opencontainers.image.version",
        "org.opencontainers.image.source",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.licenses",
    } <= labels


def test_the_wheels_are_bind_mounted_never_copied_into_a_layer() -> None:
    """A COPY of the wheels followed by `rm` would still ship them in the COPY's layer."""
    final = DOCKERFILE.split("\nFROM ${RAY_IMAGE}\n", 1)[1]
    assert DOCKERFILE.startswith("# syntax=docker/dockerfile:1")  # RUN --mount needs BuildKit
    assert not re.findall(r"^COPY\b", final, re.MULTILINE), "the final stage copies nothing"
    assert "--mount=type=bind,from=builder,source=/home/ray/wheels,target=/tmp/wheels" in final
    assert "--mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt" in final
    assert "[local]" not in final and "[dev]" not in final  # the service's dependencies only


def test_every_packaged_directory_reaches_the_build_context() -> None:
    """A package pyproject.toml ships must be both COPY'd and let through .dockerignore."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    allowed = (ROOT / ".dockerignore").read_text()
    for package in packages:
        assert f"COPY --chown=1000:100 {package}/ {package}/" in DOCKERFILE, package
        assert f"!{package}/" in allowed, package


def test_default_image_tag_is_the_package_version() -> None:
    assert Values().image.reference.endswith(f"/ai-agents:{package_version()}")

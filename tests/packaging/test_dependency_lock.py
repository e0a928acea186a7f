"""The lock (`constraints.txt`) covers every dependency pyproject.toml declares, so an install
with `-c constraints.txt` never resolves an open range afresh; Ray and pgserver, whose
internals the code relies on, are pinned exactly in pyproject.toml and agree with the lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _declared() -> list[Requirement]:
    project = _project()
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    # `dev` pulls in the `local` extra by naming the project itself
    return [r for r in map(Requirement, specs) if canonicalize_name(r.name) != "ai-agents"]


def test_the_image_leaves_out_what_only_a_local_run_needs() -> None:
    """The service image installs `dependencies` only; the embedded PostgreSQL and the
    Kubernetes schemas are the `local` extra, which `.[dev]` (the README's install) includes."""
    project = _project()
    runtime = {canonicalize_name(Requirement(s).name) for s in project["dependencies"]}
    local = {
        canonicalize_name(Requirement(s).name) for s in project["optional-dependencies"]["local"]
    }
    assert local == {"pgserver", "kubernetes-validate"}
    assert not runtime & local
    assert "ai-agents[local]" in project["optional-dependencies"]["dev"]


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_every_declared_dependency_is_pinned_in_the_lock() -> None:
    locked = _locked()
    declared = _declared()
    assert len(declared) > 20  # the parser really read pyproject.toml
    missing = [str(req) for req in declared if canonicalize_name(req.name) not in locked]
    assert not missing, f"not in constraints.txt (run scripts/lock-dependencies.sh): {missing}"
    outside = [
        f"{req.name}=={locked[canonicalize_name(req.name)]} (declared {req.specifier})"
        for req in declared
        if not req.specifier.contains(locked[canonicalize_name(req.name)], prereleases=True)
    ]
    assert not outside, f"lock outside the declared range: {outside}"


def test_ray_and_pgserver_are_pinned_exactly_and_agree_with_the_lock() -> None:
    locked = _locked()
    declared = {canonicalize_name(req.name): req for req in _declared()}
    for name in ("ray", "pgserver"):
        (spec,) = declared[name].specifier
        assert spec.operator == "==", f"{name} must be pinned exactly in pyproject.toml"
        assert locked[name] == spec.version


def test_lock_includes_what_the_declared_extras_pull_in() -> None:
    """`ray[serve]` and `uvicorn[standard]` bring packages the code imports; a lock made
    without the extras would leave them open."""
    locked = _locked()
    for name in ("starlette", "watchfiles", "httptools", "grpcio", "aiohttp"):
        assert name in locked, name

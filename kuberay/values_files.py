"""Reading values files: layer them, validate the result and every per-pool Serve override.

Separate from ``values.py`` (the schema) because checking the overrides needs Ray's Serve
schema (``serve_config.py``), which itself builds on the values model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kuberay.manifests.serve_config import override_problems
from kuberay.problems import KubeRayConfigError, Problem
from kuberay.values import DEFAULT_VALUES_FILE, Values, deep_merge, values_problems


def values_from_dict(data: Mapping[str, Any] | None, source: str = "values") -> Values:
    """Validate a values mapping (and its per-pool Serve overrides) or raise with paths."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise KubeRayConfigError(source, [Problem("", "the values file must be a mapping")])
    try:
        values = Values.model_validate(dict(data))
    except ValidationError as exc:
        raise KubeRayConfigError(source, values_problems(exc)) from None
    problems = override_problems(values.serve.deployments)
    if problems:
        raise KubeRayConfigError(source, problems)
    return values


def read_values_file(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise KubeRayConfigError(str(path), [Problem("", f"cannot read: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise KubeRayConfigError(str(path), [Problem("", f"{where}{problem}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeRayConfigError(str(path), [Problem("", "the values file must be a mapping")])
    return data


def load_values(*paths: Path | str) -> Values:
    """Read and layer values files (none: the documented defaults)."""
    if not paths:
        paths = (DEFAULT_VALUES_FILE,)
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, read_values_file(Path(path)))
    return values_from_dict(merged, source=", ".join(str(p) for p in paths))

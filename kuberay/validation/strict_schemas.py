"""The vendored KubeRay CRD schemas made strict, and the ObjectMeta schema they leave open.

The API server prunes unknown fields of a CRD object silently, so a misspelt field in a
RayService would deploy and simply be ignored. Here every object schema that lists properties
gets ``additionalProperties: false`` and ``metadata`` gets a closed ObjectMeta schema, so the
same typo fails validation offline with a "did you mean" hint instead.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kuberay.problems import Problem, format_loc, join_path, suggestion

CRD_DIR = Path(__file__).parents[1] / "crds"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
_CRD_FILES = {"RayService": "ray.io_rayservices.yaml", "RayCluster": "ray.io_rayclusters.yaml"}

# ObjectMeta fields a manifest may set (the CRD schemas leave metadata open).
_OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {},
        "deletionTimestamp": {},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array"},
        "selfLink": {"type": "string"},
    },
    "additionalProperties": False,
}
_OBJECT_META_VALIDATOR = jsonschema.Draft7Validator(_OBJECT_META)


def _tighten(node: Any) -> Any:
    """Copy of an OpenAPI v3 schema that rejects unknown properties."""
    if isinstance(node, list):
        return [_tighten(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _tighten(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict | list):
            out[key] = _tighten(out[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [_tighten(n) for n in out[key]]
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema(kind: str) -> dict[str, Any]:
    """The strict ``openAPIV3Schema`` of the v1 version of a vendored CRD."""
    text = (CRD_DIR / _CRD_FILES[kind]).read_text(encoding="utf-8")
    crd = yaml.load(text, Loader=_LOADER)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _tighten(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = _OBJECT_META
    return schema


@functools.cache
def crd_validator(kind: str, *subpath: str) -> jsonschema.Draft7Validator:
    schema = crd_schema(kind)
    for key in subpath:
        schema = schema["properties"][key]
    return jsonschema.Draft7Validator(schema)


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator in ("anyOf", "oneOf"):
        types = [s.get("type") for s in error.validator_value if isinstance(s, dict)]
        names = [t for t in types if isinstance(t, str)]
        if len(names) == len(types):
            return f"expected {' or '.join(names)}, got {json.dumps(error.instance)}"
    if error.validator == "enum":
        return f"{json.dumps(error.instance)} is not one of {error.validator_value}"
    return error.message


def schema_problems(errors: Iterable[jsonschema.ValidationError], base: str = "") -> list[Problem]:
    problems = []
    for error in errors:
        path = format_loc(list(error.path), base)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for key in sorted(k for k in error.instance if k not in allowed):
                hint = suggestion(key, allowed)
                problems.append(
                    Problem(join_path(path, key), f"additional property not allowed{hint}")
                )
        elif error.validator == "required":
            missing = re.match(r"'([^']*)'", error.message)
            key = missing.group(1) if missing else ""
            problems.append(Problem(join_path(path, key), "required property is missing"))
        else:
            problems.append(Problem(path, _describe(error)))
    return problems


def metadata_problems(doc: Mapping[str, Any]) -> list[Problem]:
    """For kinds checked without a CRD (RayJob, monitoring objects) the metadata is all the
    schema there is, so a name (or generateName) is required here too."""
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return [Problem("metadata", "required mapping is missing")]
    problems = schema_problems(_OBJECT_META_VALIDATOR.iter_errors(meta), "metadata")
    if not meta.get("name") and not meta.get("generateName"):
        problems.append(Problem("metadata.name", "required property is missing"))
    return problems

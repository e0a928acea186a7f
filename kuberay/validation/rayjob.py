"""A RayJob, checked without a vendored RayJob CRD: its spec's field names, KubeRay's own
rules about them, and any embedded cluster spec or submitter pod against the RayCluster CRD.

Secrets in ``runtimeEnvYAML`` are refused like everywhere else (``secret_env_problems``)."""

from __future__ import annotations

from typing import Any

import yaml

from kuberay.problems import Problem, join_path, suggestion
from kuberay.validation.references import secret_env_problems
from kuberay.validation.strict_schemas import crd_validator, metadata_problems, schema_problems

# RayJobSpec fields of KubeRay v1.7 (ray-operator/apis/ray/v1/rayjob_types.go).
_RAYJOB_SPEC_FIELDS = frozenset(
    {
        "activeDeadlineSeconds",
        "backoffLimit",
        "clusterSelector",
        "deletionStrategy",
        "entrypoint",
        "entrypointNumCpus",
        "entrypointNumGpus",
        "entrypointResources",
        "jobId",
        "managedBy",
        "metadata",
        "rayClusterSpec",
        "runtimeEnvYAML",
        "shutdownAfterJobFinishes",
        "submissionMode",
        "submitterConfig",
        "submitterPodTemplate",
        "suspend",
        "ttlSecondsAfterFinished",
    }
)
_SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}


def check_rayjob(doc: dict[str, Any], report_notes: list[str]) -> list[Problem]:
    report_notes.append(
        "RayJob: no RayJob CRD is vendored (kuberay/crds holds RayService and RayCluster); "
        "checked its spec field names and KubeRay's RayJob rules, and any embedded "
        "rayClusterSpec/submitterPodTemplate against the RayCluster CRD"
    )
    problems = metadata_problems(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [*problems, Problem("spec", "required mapping is missing")]
    for key in sorted(set(spec) - _RAYJOB_SPEC_FIELDS):
        problems.append(
            Problem(
                join_path("spec", key),
                "additional property not allowed" + suggestion(key, _RAYJOB_SPEC_FIELDS),
            )
        )
    if not isinstance(spec.get("entrypoint"), str) or not spec["entrypoint"].strip():
        problems.append(Problem("spec.entrypoint", "required: the command the job runs"))
    selector = spec.get("clusterSelector")
    if selector is not None and (
        not isinstance(selector, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in selector.items())
    ):
        problems.append(Problem("spec.clusterSelector", "must map strings to strings"))
        selector = None
    has_cluster = "rayClusterSpec" in spec
    if bool(selector) == has_cluster:
        problems.append(Problem("spec", "set exactly one of rayClusterSpec and clusterSelector"))
    if selector:
        if not selector.get("ray.io/cluster"):
            problems.append(
                Problem(
                    join_path("spec", "clusterSelector", "ray.io/cluster"),
                    "required: the RayCluster's name",
                )
            )
        if spec.get("suspend"):
            problems.append(Problem("spec.suspend", "not supported with clusterSelector"))
    for key in ("shutdownAfterJobFinishes", "suspend"):
        if key in spec and not isinstance(spec[key], bool):
            problems.append(Problem(join_path("spec", key), "must be a boolean"))
    for key, minimum in (
        ("activeDeadlineSeconds", 1),
        ("backoffLimit", 0),
        ("ttlSecondsAfterFinished", 0),
    ):
        value = spec.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < minimum
        ):
            problems.append(Problem(join_path("spec", key), f"must be an integer >= {minimum}"))
    if spec.get("ttlSecondsAfterFinished") and not spec.get("shutdownAfterJobFinishes"):
        problems.append(
            Problem("spec.ttlSecondsAfterFinished", "needs shutdownAfterJobFinishes: true")
        )
    mode = spec.get("submissionMode")
    if mode is not None and mode not in _SUBMISSION_MODES:
        problems.append(
            Problem("spec.submissionMode", f"must be one of {sorted(_SUBMISSION_MODES)}")
        )
    metadata = spec.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        problems.append(Problem("spec.metadata", "must map strings to strings"))
    runtime_env = spec.get("runtimeEnvYAML")
    if runtime_env is not None:
        try:
            env = yaml.safe_load(runtime_env) if isinstance(runtime_env, str) else None
        except yaml.YAMLError:
            env = None
        if not isinstance(env, dict):
            problems.append(Problem("spec.runtimeEnvYAML", "must be a YAML mapping"))
        else:
            problems += secret_env_problems(env, "spec.runtimeEnvYAML")
    if has_cluster:
        problems += schema_problems(
            crd_validator("RayCluster", "spec").iter_errors(spec["rayClusterSpec"]),
            "spec.rayClusterSpec",
        )
    if "submitterPodTemplate" in spec:
        validator = crd_validator("RayCluster", "spec", "headGroupSpec", "template")
        problems += schema_problems(
            validator.iter_errors(spec["submitterPodTemplate"]), "spec.submitterPodTemplate"
        )
    return problems

"""The Kubernetes Pod Security "restricted" profile (v1.30), checked offline on every pod
template a manifest carries, so a hand-edited manifest that a namespace labelled
``pod-security.kubernetes.io/enforce: restricted`` would refuse fails ``kuberay validate``
first, naming the object and the field.

The rules are those of the profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/):
the baseline ones (no host namespaces, ports or paths, no privileged containers, no added
capabilities beyond ``NET_BIND_SERVICE``, no unsafe sysctls, no ``Unconfined`` seccomp or
AppArmor) and the restricted ones (only ephemeral and config volume types,
``allowPrivilegeEscalation: false``, ``runAsNonRoot: true`` and a non-zero ``runAsUser``,
``seccompProfile`` ``RuntimeDefault`` or ``Localhost``, capabilities dropping ``ALL``).
KubeRay's autoscaler sidecar takes ``autoscalerOptions.securityContext``, checked likewise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kuberay.problems import Problem, join_path

_ALLOWED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
_SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
_SECCOMP_OK = frozenset({"RuntimeDefault", "Localhost"})
_RESTRICTED = 'Pod Security "restricted"'


def pod_templates(doc: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path of the pod ``spec``, the spec) of every pod a manifest creates."""
    kind = doc.get("kind")
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    clusters: list[tuple[str, Any]] = []
    if kind == "RayService":
        clusters.append(("spec.rayClusterConfig", spec.get("rayClusterConfig")))
    elif kind == "RayCluster":
        clusters.append(("spec", spec))
    elif kind == "RayJob":
        clusters.append(("spec.rayClusterSpec", spec.get("rayClusterSpec")))
        yield from _template_spec("spec.submitterPodTemplate", spec.get("submitterPodTemplate"))
    elif kind == "Pod":
        yield "spec", spec
    elif kind in ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        yield from _template_spec("spec.template", spec.get("template"))
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield from _template_spec("spec.jobTemplate.spec.template", job.get("template"))
    for base, cluster in clusters:
        if not isinstance(cluster, dict):
            continue
        yield from _template_spec(
            join_path(base, "headGroupSpec", "template"),
            (cluster.get("headGroupSpec") or {}).get("template"),
        )
        for i, group in enumerate(cluster.get("workerGroupSpecs") or []):
            if isinstance(group, dict):
                yield from _template_spec(
                    join_path(base, "workerGroupSpecs", i, "template"), group.get("template")
                )


def _template_spec(path: str, template: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        yield join_path(path, "spec"), template["spec"]


def _containers(spec: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for i, container in enumerate(spec.get(key) or []):
            if isinstance(container, dict):
                yield join_path(path, key, i), container


def container_problems(
    path: str, context: Any, pod_context: Mapping[str, Any] | None = None
) -> list[Problem]:
    """The restricted rules of one container's ``securityContext`` (``path`` names it),
    with what the pod's ``securityContext`` already guarantees."""
    pod = pod_context or {}
    ctx = context if isinstance(context, dict) else {}
    at = join_path(path, "securityContext")
    problems = []
    if ctx.get("privileged") is True:
        problems.append(Problem(join_path(at, "privileged"), f"must be false ({_RESTRICTED})"))
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append(
            Problem(join_path(at, "allowPrivilegeEscalation"), f"must be false ({_RESTRICTED})")
        )
    caps = ctx.get("capabilities") if isinstance(ctx.get("capabilities"), dict) else {}
    assert isinstance(caps, dict)
    if "ALL" not in (caps.get("drop") or []):
        problems.append(
            Problem(join_path(at, "capabilities", "drop"), f"must include ALL ({_RESTRICTED})")
        )
    added = [c for c in caps.get("add") or [] if c != "NET_BIND_SERVICE"]
    if added:
        problems.append(
            Problem(
                join_path(at, "capabilities", "add"),
                f"may only add NET_BIND_SERVICE, not {added} ({_RESTRICTED})",
            )
        )
    if ctx.get("runAsNonRoot") is False or (
        "runAsNonRoot" not in ctx and pod.get("runAsNonRoot") is not True
    ):
        problems.append(Problem(join_path(at, "runAsNonRoot"), f"must be true ({_RESTRICTED})"))
    if ctx.get("runAsUser") == 0:
        problems.append(Problem(join_path(at, "runAsUser"), f"must not be 0 ({_RESTRICTED})"))
    seccomp = (ctx.get("seccompProfile") or {}).get("type")
    pod_seccomp = (pod.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in _SECCOMP_OK:
        problems.append(
            Problem(
                join_path(at, "seccompProfile", "type"),
                f"must be RuntimeDefault or Localhost, not {seccomp} ({_RESTRICTED})",
            )
        )
    elif seccomp is None and pod_seccomp not in _SECCOMP_OK:
        problems.append(
            Problem(
                join_path(at, "seccompProfile", "type"),
                f"must be RuntimeDefault or Localhost, here or in the pod ({_RESTRICTED})",
            )
        )
    if ctx.get("procMount") not in (None, "Default"):
        problems.append(Problem(join_path(at, "procMount"), f"must be Default ({_RESTRICTED})"))
    return problems


def _pod_problems(path: str, spec: dict[str, Any]) -> list[Problem]:
    ctx = spec.get("securityContext") if isinstance(spec.get("securityContext"), dict) else {}
    assert isinstance(ctx, dict)
    at = join_path(path, "securityContext")
    problems = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            problems.append(Problem(join_path(path, key), f"must be false ({_RESTRICTED})"))
    if ctx.get("runAsUser") == 0:
        problems.append(Problem(join_path(at, "runAsUser"), f"must not be 0 ({_RESTRICTED})"))
    seccomp = (ctx.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in _SECCOMP_OK:
        problems.append(
            Problem(
                join_path(at, "seccompProfile", "type"),
                f"must be RuntimeDefault or Localhost, not {seccomp} ({_RESTRICTED})",
            )
        )
    for i, sysctl in enumerate(ctx.get("sysctls") or []):
        if isinstance(sysctl, dict) and sysctl.get("name") not in _SAFE_SYSCTLS:
            problems.append(
                Problem(
                    join_path(at, "sysctls", i, "name"),
                    f"{sysctl.get('name')} is not a safe sysctl ({_RESTRICTED})",
                )
            )
    for i, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, dict):
            kinds = sorted(set(volume) - {"name"})
            bad = [k for k in kinds if k not in _ALLOWED_VOLUMES]
            if bad:
                problems.append(
                    Problem(
                        join_path(path, "volumes", i, bad[0]),
                        f"volume type {bad[0]} is not allowed ({_RESTRICTED})",
                    )
                )
    for cpath, container in _containers(spec, path):
        problems += container_problems(cpath, container.get("securityContext"), ctx)
        for j, port in enumerate(container.get("ports") or []):
            if isinstance(port, dict) and port.get("hostPort"):
                problems.append(
                    Problem(
                        join_path(cpath, "ports", j, "hostPort"),
                        f"host ports are not allowed ({_RESTRICTED})",
                    )
                )
    return problems


def restricted_problems(doc: Mapping[str, Any]) -> list[Problem]:
    """Every way the pods of ``doc`` break the restricted profile."""
    problems: list[Problem] = []
    head_context: Mapping[str, Any] = {}
    for path, spec in pod_templates(doc):
        problems += _pod_problems(path, spec)
        if "headGroupSpec" in path:
            head_context = spec.get("securityContext") or {}
    cluster = None
    if doc.get("kind") == "RayService":
        cluster = (doc.get("spec") or {}).get("rayClusterConfig")
        base = "spec.rayClusterConfig"
    elif doc.get("kind") == "RayCluster":
        cluster, base = doc.get("spec"), "spec"
    if isinstance(cluster, dict) and cluster.get("enableInTreeAutoscaling"):
        options = cluster.get("autoscalerOptions") or {}
        problems += container_problems(
            join_path(base, "autoscalerOptions"), options.get("securityContext"), head_context
        )
    return problems

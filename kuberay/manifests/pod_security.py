"""What makes the rendered pods production-safe: the Pod Security "restricted" settings, the
Secret as files, the ServiceAccount without a token and the worker groups' disruption budget.

- Every pod runs as the image's non-root user with ``seccompProfile: RuntimeDefault``; every
  container drops all capabilities and cannot escalate privileges. Ray writes its session
  (logs, sockets, spilled objects) under ``/tmp/ray`` and HAProxy its state under ``/tmp``:
  both are ``emptyDir`` volumes, so nothing depends on a writable image layer.
- Secrets reach the containers as files under ``AI_AGENTS_SECRETS_DIR`` (one file per setting,
  what ``core.settings`` reads), never as environment variables, which ``ps e``, crash dumps
  and ``kubectl describe`` would show. Optional keys are projected with ``optional: true``, so a
  Secret without the LLM key still starts the pods (context-only notes).
- The ServiceAccount mounts no API token (``automountServiceAccountToken: false``). Only
  KubeRay's autoscaler sidecar on the head needs the Kubernetes API (KubeRay binds its Role to
  the head's ServiceAccount): it alone gets a projected token, mounted where the autoscaler
  reads it; the Ray container, which runs Ray Jobs, has none.
"""

from __future__ import annotations

from typing import Any

from core.settings.sources import SECRETS_DIR_VARIABLE
from kuberay.values import OPTIONAL_SECRET_KEYS, Values

SECRETS_DIR = "/etc/ai-agents/secrets"
__all__ = ["SECRETS_DIR", "SECRETS_DIR_VARIABLE"]
SECRETS_VOLUME = "secrets"
TMP_VOLUME = "tmp"
API_TOKEN_VOLUME = "kube-api-access"
API_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# Readable by the pods' group (fsGroup) only; 0440.
SECRET_FILE_MODE = 0o440


def pod_security_context(values: Values) -> dict[str, Any]:
    sec = values.pod_security
    return {
        "runAsNonRoot": True,
        "runAsUser": sec.run_as_user,
        "runAsGroup": sec.run_as_group,
        "fsGroup": sec.fs_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def secrets_volume(values: Values, keys: tuple[str, ...]) -> dict[str, Any]:
    """A projected volume with ``keys`` of the Secret, each a file named like the key."""
    required = [k for k in keys if k not in OPTIONAL_SECRET_KEYS]
    sources: list[dict[str, Any]] = [
        {
            "secret": {
                "name": values.secret_name,
                "items": [{"key": k, "path": k} for k in required],
            }
        }
    ]
    sources += [
        {
            "secret": {
                "name": values.secret_name,
                "items": [{"key": k, "path": k}],
                "optional": True,
            }
        }
        for k in keys
        if k in OPTIONAL_SECRET_KEYS
    ]
    return {
        "name": SECRETS_VOLUME,
        "projected": {"defaultMode": SECRET_FILE_MODE, "sources": sources},
    }


def secrets_mount() -> dict[str, Any]:
    return {"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True}


def scratch_volume() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "emptyDir": {}}


def scratch_mount() -> dict[str, Any]:
    return {"name": TMP_VOLUME, "mountPath": "/tmp"}


def api_token_volume() -> dict[str, Any]:
    """What the kubelet's automount would project, as a volume only the autoscaler mounts."""
    return {
        "name": API_TOKEN_VOLUME,
        "projected": {
            "defaultMode": 0o444,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }


def api_token_mount() -> dict[str, Any]:
    return {"name": API_TOKEN_VOLUME, "mountPath": API_TOKEN_PATH, "readOnly": True}


def service_account(values: Values, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata,
        "automountServiceAccountToken": False,
    }


def disruption_budgets(values: Values, labels: dict[str, str]) -> list[dict[str, Any]]:
    """One per worker group; KubeRay labels each pod with its group (``ray.io/group``)."""
    if not values.pod_disruption_budget.enabled:
        return []
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {
                "name": f"{values.name}-{group.group_name}",
                "namespace": values.namespace,
                "labels": labels,
            },
            "spec": {
                "maxUnavailable": values.pod_disruption_budget.max_unavailable,
                "selector": {
                    "matchLabels": {
                        "app.kubernetes.io/instance": values.name,
                        "app.kubernetes.io/component": "ray-worker",
                        "ray.io/group": group.group_name,
                    }
                },
            },
        }
        for group in values.worker_groups
    ]

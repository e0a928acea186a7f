"""Builders of the RayService and its companions (Secret template, Ingress, dashboard Service,
the re-enhancement RayJob, the migration Job), as plain dicts; the monitoring objects are in
``kuberay.manifests.monitoring``, the NetworkPolicies in ``kuberay.manifests.network_policy``.

Names and ports follow KubeRay v1.7 (``kuberay/crds/``): services ``<name>-head-svc`` and
``<name>-serve-svc``, ports gcs-server 6379, dashboard 8265, client 10001, serve 8000, metrics
8080 (+ autoscaler 44217 and dashboard 44227 metrics on the head). Secrets reach pods only
as files (``kuberay.manifests.pod_security``); nothing secret is ever in ``serveConfigV2``.
Every port a Ray node opens is pinned in ``rayStartParams`` (``kuberay.manifests.ray_ports``).
"""

from __future__ import annotations

from typing import Any

from core.ingress_mode import HAPROXY_FLAGS, LOG_ROTATION
from kuberay.manifests import pod_security
from kuberay.manifests.ray_ports import (
    AUTOSCALER_METRICS_PORT,
    CLIENT_PORT,
    DASHBOARD_AGENT_PORT,
    DASHBOARD_METRICS_PORT,
    DASHBOARD_PORT,
    GCS_PORT,
    METRICS_PORT,
    start_params,
)
from kuberay.manifests.serve_config import SERVE_PORT, longest_graceful_shutdown_s
from kuberay.values import (
    ALL_SECRET_KEYS,
    MIGRATION_SECRET_KEYS,
    SERVICE_SECRET_KEYS,
    Resources,
    Scheduling,
    Values,
)

__all__ = [
    "AUTOSCALER_METRICS_PORT",
    "CLIENT_PORT",
    "DASHBOARD_AGENT_PORT",
    "DASHBOARD_METRICS_PORT",
    "DASHBOARD_PORT",
    "GCS_PORT",
    "METRICS_PORT",
    "SERVE_PORT",
]
# The Secret key KubeRay reads Ray's token from (authOptions.secretName).
RAY_TOKEN_KEY = "auth_token"

# KubeRay's own health checks (ray-operator/controllers/ray/common/pod.go): the raylet via the
# dashboard agent, the GCS on the head, and the Serve proxy on RayService workers.
_WGET = "wget --tries 1 -T {timeout} -q -O- http://localhost:{port}/{path} | grep success"
_RAYLET_OK = _WGET.format(timeout=2, port=DASHBOARD_AGENT_PORT, path="api/local_raylet_healthz")
_GCS_OK = _WGET.format(timeout=10, port=DASHBOARD_PORT, path="api/gcs_healthz")
_PROXY_OK = _WGET.format(timeout=10, port=SERVE_PORT, path="-/healthz")


def labels(values: Values, component: str) -> dict[str, str]:
    return {
        **values.labels,
        "app.kubernetes.io/name": "ai-agents",
        "app.kubernetes.io/instance": values.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "ai-agents",
        "app.kubernetes.io/managed-by": "ai-agents-kuberay",
    }


def metadata(values: Values, name: str, component: str, **extra: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": values.namespace, "labels": labels(values, component)}
    meta.update(extra)
    return meta


def serve_service_name(values: Values) -> str:
    return f"{values.name}-serve-svc"


# ---------------------------------------------------------------------------- pods


def _resources(res: Resources) -> dict[str, Any]:
    return res.model_dump(by_alias=True, exclude_none=True)


# The image's link to the console script `ai-agents-haproxy` (the Dockerfile makes it): Serve
# runs HAProxy through it, which bounds the configuration Serve generates (core/network/haproxy.py).
HAPROXY_LAUNCHER = "/usr/local/bin/ai-agents-haproxy"


def container_env(values: Values) -> list[dict[str, Any]]:
    """Non-secret env (Ray's log rotation, the cluster's networks, the ingress mode's flags, then
    values.env, which wins) and where the secrets' files are; sorted by name."""
    plain = {**LOG_ROTATION, **values.cluster_network.environment()}
    if values.serve.ingress_mode == "haproxy":
        plain.update(HAPROXY_FLAGS, RAY_SERVE_HAPROXY_BINARY_PATH=HAPROXY_LAUNCHER)
    secrets_dir = {pod_security.SECRETS_DIR_VARIABLE: pod_security.SECRETS_DIR}
    env = [{"name": k, "value": v} for k, v in {**plain, **values.env, **secrets_dir}.items()]
    return sorted(env, key=lambda e: e["name"])


def _probe(checks: list[str], timeout: int, initial_delay: int, failure_threshold: int):
    return {
        "exec": {"command": ["bash", "-c", " && ".join(checks)]},
        "initialDelaySeconds": initial_delay,
        "timeoutSeconds": timeout,
        "periodSeconds": 5,
        "successThreshold": 1,
        "failureThreshold": failure_threshold,
    }


def _port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def ray_dashboard_env(values: Values) -> list[dict[str, str]]:
    """The three variables Ray's dashboard reads, for the head container only."""
    settings = values.ray_dashboard
    pairs = {
        "RAY_GRAFANA_HOST": settings.grafana_host,
        "RAY_GRAFANA_IFRAME_HOST": settings.grafana_iframe_host,
        "RAY_PROMETHEUS_HOST": settings.prometheus_host,
        "RAY_PROMETHEUS_NAME": settings.prometheus_datasource,
    }
    return [{"name": k, "value": v} for k, v in pairs.items() if v and k not in values.env]


def _ray_container(values: Values, node: str, resources: Resources) -> dict[str, Any]:
    head = node == "head"
    if head:
        ports = [
            _port("gcs-server", GCS_PORT),
            _port("dashboard", DASHBOARD_PORT),
            _port("client", CLIENT_PORT),
            _port("serve", SERVE_PORT),
            _port("metrics", METRICS_PORT),
            _port("as-metrics", AUTOSCALER_METRICS_PORT),
            _port("dash-metrics", DASHBOARD_METRICS_PORT),
        ]
        liveness = _probe([_RAYLET_OK, _GCS_OK], 5, 30, 120)
        readiness = _probe([_RAYLET_OK, _GCS_OK], 5, 10, 10)
    else:
        ports = [_port("serve", SERVE_PORT), _port("metrics", METRICS_PORT)]
        liveness = _probe([_RAYLET_OK], 2, 30, 120)
        # A worker takes Serve traffic only while its proxy is healthy (KubeRay's default).
        readiness = _probe([_RAYLET_OK, _PROXY_OK], 2, 10, 1)
    return {
        "name": f"ray-{node}",
        "image": values.image.reference,
        "imagePullPolicy": values.image.pull_policy,
        "ports": ports,
        "env": sorted(
            container_env(values) + (ray_dashboard_env(values) if head else []),
            key=lambda e: e["name"],
        ),
        "resources": _resources(resources),
        "livenessProbe": liveness,
        "readinessProbe": readiness,
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "ray stop"]}}},
        "securityContext": pod_security.container_security_context(),
        "volumeMounts": [pod_security.secrets_mount(), pod_security.scratch_mount()],
    }


def termination_grace_period_s(values: Values, serve_config: dict[str, Any]) -> int:
    """Long enough for the slowest deployment to drain, plus the configured margin."""
    longest = longest_graceful_shutdown_s(serve_config)
    return int(-(-longest // 1)) + values.termination_grace_margin_seconds


def _pod_spec_extras(values: Values, scheduling: Scheduling) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": values.service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security.pod_security_context(values),
    }
    if values.image.pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in values.image.pull_secrets]
    if scheduling.node_selector:
        spec["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        spec["tolerations"] = list(scheduling.tolerations)
    return spec


def _pod_template(
    values: Values, node: str, scheduling: Scheduling, resources: Resources, grace_s: int
) -> dict[str, Any]:
    volumes = [
        pod_security.secrets_volume(values, SERVICE_SECRET_KEYS),
        pod_security.scratch_volume(),
    ]
    if node == "head":
        volumes.append(pod_security.api_token_volume())  # the autoscaler's only
    return {
        "metadata": {"labels": labels(values, f"ray-{node}")},
        "spec": {
            "containers": [_ray_container(values, node, resources)],
            "terminationGracePeriodSeconds": grace_s,
            "volumes": volumes,
            **_pod_spec_extras(values, scheduling),
        },
    }


# ---------------------------------------------------------------------------- RayService


def rayservice(values: Values, serve_config: dict[str, Any], serve_config_yaml: str):
    grace_s = termination_grace_period_s(values, serve_config)
    workers = []
    for group in values.worker_groups:
        spec: dict[str, Any] = {
            "groupName": group.group_name,
            "replicas": group.replicas,
            "minReplicas": group.min_replicas,
            "maxReplicas": group.max_replicas,
            "rayStartParams": start_params(head=False),
            "template": _pod_template(values, "worker", group, group.resources, grace_s),
        }
        if group.idle_timeout_seconds is not None:
            spec["idleTimeoutSeconds"] = group.idle_timeout_seconds
        workers.append(spec)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": metadata(values, values.name, "rayservice"),
        "spec": {
            "upgradeStrategy": {"type": "NewCluster"},
            # Serve replicas never run on the head (num-cpus 0); keep ingress traffic off it.
            "excludeHeadPodFromServeSvc": True,
            "serveService": {
                "metadata": {"name": serve_service_name(values), "labels": labels(values, "serve")},
                "spec": {
                    "ports": [
                        {
                            "name": "serve",
                            "port": SERVE_PORT,
                            "targetPort": SERVE_PORT,
                            "protocol": "TCP",
                        }
                    ]
                },
            },
            "serveConfigV2": serve_config_yaml,
            "rayClusterConfig": _cluster_config(values, grace_s, workers),
        },
    }


def _cluster_config(values: Values, grace_s: int, workers: list[dict[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "rayVersion": values.ray_version,
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {
            "upscalingMode": values.autoscaler.upscaling_mode,
            "idleTimeoutSeconds": values.autoscaler.idle_timeout_seconds,
            "resources": _resources(values.autoscaler.resources),
            "securityContext": pod_security.container_security_context(),
            "volumeMounts": [pod_security.api_token_mount()],
        },
        "headGroupSpec": {
            "rayStartParams": {
                "num-cpus": "0",
                "dashboard-host": "0.0.0.0",
                **start_params(head=True),
            },
            "template": _pod_template(values, "head", values.head, values.head.resources, grace_s),
        },
        "workerGroupSpecs": workers,
    }
    if values.ray_auth.enabled:
        config["authOptions"] = {"mode": "token", "secretName": values.ray_token_secret}
    ft = values.gcs_fault_tolerance
    if ft.enabled:
        options: dict[str, Any] = {
            "redisAddress": ft.redis_address,
            "redisPassword": {
                "valueFrom": {
                    "secretKeyRef": {"name": values.redis_password_secret, "key": ft.password_key}
                }
            },
        }
        if ft.external_storage_namespace:
            options["externalStorageNamespace"] = ft.external_storage_namespace
        config["gcsFaultToleranceOptions"] = options
    return config


# ---------------------------------------------------------------------------- companions


def secret_templates(values: Values) -> list[dict[str, Any]]:
    """The Secrets' key names with empty values: the service Secret, the Ray token's (KubeRay
    reads the key ``auth_token``) and the Redis password's (if not in the service Secret)."""
    keys: dict[str, set[str]] = {values.secret_name: set(ALL_SECRET_KEYS)}
    if values.ray_auth.enabled:
        keys.setdefault(values.ray_token_secret, set()).add(RAY_TOKEN_KEY)
    if values.gcs_fault_tolerance.enabled:
        keys.setdefault(values.redis_password_secret, set()).add(
            values.gcs_fault_tolerance.password_key
        )
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata(values, name, "secrets"),
            "type": "Opaque",
            "stringData": dict.fromkeys(sorted(names), ""),
        }
        for name, names in keys.items()
    ]


def ingress(values: Values) -> dict[str, Any]:
    ing = values.ingress
    backend = {"service": {"name": serve_service_name(values), "port": {"name": "serve"}}}
    spec: dict[str, Any] = {
        "tls": [{"hosts": [ing.host], "secretName": ing.tls_secret_name}],
        "rules": [
            {
                "host": ing.host,
                "http": {
                    "paths": [
                        {"path": p, "pathType": "Prefix", "backend": backend} for p in ing.paths
                    ]
                },
            }
        ],
    }
    if ing.class_name:
        spec["ingressClassName"] = ing.class_name
    meta = metadata(values, values.name, "ingress")
    if ing.annotations:
        meta["annotations"] = dict(ing.annotations)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def dashboard_service(values: Values) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(values, f"{values.name}-dashboard", "dashboard"),
        "spec": {
            "type": "ClusterIP",
            "selector": {
                "app.kubernetes.io/instance": values.name,
                "app.kubernetes.io/component": "ray-head",
            },
            "ports": [
                {
                    "name": "dashboard",
                    "port": DASHBOARD_PORT,
                    "targetPort": "dashboard",
                    "protocol": "TCP",
                }
            ],
        },
    }


# ---------------------------------------------------------------------------- jobs


def reenhance_rayjob(values: Values) -> dict[str, Any]:
    job = values.reenhance
    entrypoint = " ".join(["python -m scripts.reenhance --tenant", job.tenant, *job.extra_args])
    meta = metadata(values, "", "reenhance")
    del meta["name"]
    meta["generateName"] = f"{values.name}-reenhance-"
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": meta,
        "spec": {
            "entrypoint": entrypoint,
            # The operator submits through the head's dashboard (allowed by the NetworkPolicy
            # and authenticated with the cluster's token); no submitter pod is created.
            "submissionMode": "HTTPMode",
            # The RayService's current RayCluster (its name changes on every upgrade).
            "clusterSelector": {"ray.io/cluster": job.ray_cluster_name},
            # Never delete the cluster: it is the RayService's.
            "shutdownAfterJobFinishes": False,
            "activeDeadlineSeconds": job.active_deadline_seconds,
            "metadata": {"app": "ai-agents", "tenant": job.tenant},
        },
    }


def migration_job(values: Values) -> dict[str, Any]:
    mig = values.migration
    container = {
        "name": "migrate",
        "image": values.image.reference,
        "imagePullPolicy": values.image.pull_policy,
        "command": ["ai-agents", "migrate"],
        "env": container_env(values),
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
        "securityContext": pod_security.container_security_context(),
        "volumeMounts": [pod_security.secrets_mount(), pod_security.scratch_mount()],
    }
    pod_spec = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [
            pod_security.secrets_volume(values, MIGRATION_SECRET_KEYS),
            pod_security.scratch_volume(),
        ],
        **_pod_spec_extras(values, Scheduling()),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(values, f"{values.name}-migrate", "migration"),
        "spec": {
            "backoffLimit": mig.backoff_limit,
            "activeDeadlineSeconds": mig.active_deadline_seconds,
            "ttlSecondsAfterFinished": mig.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": labels(values, "migration")}, "spec": pod_spec},
        },
    }


def service_account(values: Values) -> dict[str, Any]:
    return pod_security.service_account(
        values, metadata(values, values.service_account, "service-account")
    )


def disruption_budgets(values: Values) -> list[dict[str, Any]]:
    return pod_security.disruption_budgets(values, labels(values, "disruption-budget"))

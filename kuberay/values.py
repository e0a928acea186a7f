"""The values file that `ai-agents kuberay render` reads, as a strict pydantic model.

Keys are camelCase like the manifests they feed. Every model forbids unknown keys, so a
misspelt ``workerGroups[0].maxReplica`` fails with its path instead of being ignored.
``kuberay/values.yaml`` documents every default (a test checks the file equals ``Values()``);
several files can be layered (later files win, mappings merge, lists are replaced).
"""

from __future__ import annotations

import copy
import importlib.metadata
import ipaddress
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from core.ingress_mode import IngressMode
from core.version import package_version
from kuberay.capacity import advertised_cpus
from kuberay.monitoring_values import Alerting, RayDashboard
from kuberay.problems import Problem, format_loc, suggestion
from kuberay.schedule_values import RankingFit
from kuberay.security_values import (
    DisruptionBudget,
    GcsFaultTolerance,
    NetworkPolicyValues,
    PodSecurity,
    RayAuth,
)

DEFAULT_VALUES_FILE = Path(__file__).with_name("values.yaml")
PRODUCTION_VALUES_FILE = Path(__file__).with_name("values.production.yaml")

# Secret keys mounted into the Ray head and workers (service role URL, never the owner's).
SERVICE_SECRET_KEYS = (
    "AI_AGENTS_ADMIN_TOKEN",
    "AI_AGENTS_DATABASE_URL",
    "AI_AGENTS_ENCRYPTION_KEYS",
    "AI_AGENTS_LLM_API_KEY",
    "AI_AGENTS_METRICS_TOKEN",
)
# Only the migration Job sees the owner role's URL.
MIGRATION_SECRET_KEYS = ("AI_AGENTS_DATABASE_URL", "AI_AGENTS_MIGRATION_DATABASE_URL")
ALL_SECRET_KEYS = tuple(sorted(set(SERVICE_SECRET_KEYS) | set(MIGRATION_SECRET_KEYS)))
# Without an LLM key the service writes context-only notes, so pods may start without it.
# Without the metrics token the service runs but refuses /metrics (the scrape then fails).
OPTIONAL_SECRET_KEYS = frozenset({"AI_AGENTS_LLM_API_KEY", "AI_AGENTS_METRICS_TOKEN"})
# Prometheus reads the same key to authenticate its scrape of the ingress /metrics.
METRICS_TOKEN_SECRET_KEY = "AI_AGENTS_METRICS_TOKEN"

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_LIKE = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET|CREDENTIAL|DATABASE_URL)", re.IGNORECASE)
# KubeRay appends a 6-character suffix to the RayCluster it creates and "-serve-svc" to the
# serve Service; both must stay within 63 characters.
MAX_NAME_LENGTH = 47


def installed_ray_version() -> str:
    return importlib.metadata.version("ray")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_default=True
    )


class ResourceList(_Model):
    cpu: str | None = None
    memory: str | None = None
    ephemeral_storage: str | None = Field(default=None, alias="ephemeral-storage")

    @field_validator("cpu", "memory", "ephemeral_storage")
    @classmethod
    def _quantity(cls, v: str | None) -> str | None:
        if v is not None and not _QUANTITY.match(v):
            raise ValueError(f"'{v}' is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)")
        return v


class Resources(_Model):
    requests: ResourceList = ResourceList()
    limits: ResourceList = ResourceList()

    def cpus(self) -> int | None:
        """CPUs Ray is started with in the pod: KubeRay uses the limit, else the request,
        rounded up to a whole CPU (``kuberay.capacity.advertised_cpus``)."""
        raw = self.limits.cpu or self.requests.cpu
        return None if raw is None else advertised_cpus(raw)


class Image(_Model):
    repository: str = "ghcr.io/example/ai-agents"
    # None: the version of the ai-agents package doing the rendering, which is the tag the
    # Dockerfile's build instructions give the image (one place for the version).
    tag: str | None = None
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    pull_secrets: list[str] = []

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag or package_version()}"


class Scheduling(_Model):
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []


class HeadGroup(Scheduling):
    resources: Resources = Resources(
        requests=ResourceList(cpu="1", memory="4Gi"),
        limits=ResourceList(cpu="2", memory="4Gi"),
    )


class WorkerGroup(Scheduling):
    group_name: str
    replicas: int = Field(default=1, ge=0)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=4, ge=1)
    idle_timeout_seconds: int | None = Field(default=None, ge=0)
    resources: Resources = Resources(
        requests=ResourceList(cpu="2", memory="4Gi"),
        limits=ResourceList(cpu="2", memory="4Gi"),
    )

    @field_validator("group_name")
    @classmethod
    def _group_name(cls, v: str) -> str:
        if not _DNS1123.match(v) or len(v) > 63:
            raise ValueError("must be a DNS-1123 label (lower-case letters, digits, '-')")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> WorkerGroup:
        if not self.min_replicas <= self.replicas <= self.max_replicas:
            raise ValueError(
                f"need minReplicas <= replicas <= maxReplicas "
                f"(got {self.min_replicas} <= {self.replicas} <= {self.max_replicas})"
            )
        return self


class Autoscaler(_Model):
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = "Default"
    idle_timeout_seconds: int = Field(default=60, ge=0)
    resources: Resources = Resources(
        requests=ResourceList(cpu="500m", memory="512Mi"),
        limits=ResourceList(cpu="500m", memory="512Mi"),
    )


class Serve(_Model):
    request_timeout_s: float = Field(default=30, gt=0)
    keep_alive_timeout_s: int = Field(default=90, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    enable_access_log: bool = True
    # proxy: Serve's proxy actor; haproxy: Ray 2.60's HAProxy + direct ingress and the
    # throughput flags (core/ingress_mode.py), far less CPU per webhook; the default, measured
    # across hosts in benchmarks/cluster (docs/operations/kuberay.md#ingress-mode).
    ingress_mode: IngressMode = "haproxy"
    # Per-pool overrides, deep-merged onto actors/deployment_options.py; keys are Ray's own
    # deployment options and are checked against Ray's models like everything else.
    deployments: dict[str, dict[str, Any]] = {}


class Ingress(_Model):
    enabled: bool = True
    class_name: str | None = "nginx"
    host: str = "ai-agents.example.com"
    tls_secret_name: str = "ai-agents-tls"
    annotations: dict[str, str] = {}
    paths: list[str] = ["/webhook", "/api", "/health", "/admin", "/f"]

    @field_validator("paths")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for p in paths:
            if not p.startswith("/"):
                raise ValueError(f"path '{p}' must start with '/'")
            if p == "/" or p.startswith("/metrics"):
                raise ValueError(
                    f"path '{p}' would publish /metrics; Prometheus scrapes it in-cluster"
                )
        if not paths:
            raise ValueError("list at least one path")
        return paths


class Monitoring(_Model):
    enabled: bool = True
    labels: dict[str, str] = {}
    scrape_interval: str = "30s"
    dashboard_labels: dict[str, str] = {"grafana_dashboard": "1"}
    dashboard_annotations: dict[str, str] = {}
    # None: the URLs in kuberay/alerts.yaml (the runbook pages of the project's docs site).
    runbook_base_url: str | None = None
    alerting: Alerting = Alerting()

    @field_validator("runbook_base_url")
    @classmethod
    def _runbook_base(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^#\s]+$", v):
            raise ValueError(f"'{v}' is not an http(s) URL without a #fragment")
        return v

    @field_validator("scrape_interval")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not re.match(r"^[0-9]+(ms|s|m|h)$", v):
            raise ValueError(f"'{v}' is not a Prometheus duration (e.g. 30s)")
        return v


class ClusterNetwork(_Model):
    """The cluster's own address ranges. A tenant's SDP URL may not reach them (the Ray head,
    its dashboard, an in-cluster PostgreSQL), and proxies there (the ingress controller,
    HAProxy on other Ray pods) are believed about the client's address."""

    pod_cidrs: list[str] = ["10.244.0.0/16"]
    service_cidrs: list[str] = ["10.96.0.0/12"]
    extra_refused_cidrs: list[str] = []

    @field_validator("pod_cidrs", "service_cidrs", "extra_refused_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"'{value}' is not a network in CIDR notation") from None
        return values

    def environment(self) -> dict[str, str]:
        """The settings rendered from these ranges (values.env overrides them)."""
        return {
            "AI_AGENTS_SDP_REFUSED_NETWORKS": ",".join(
                [*self.pod_cidrs, *self.service_cidrs, *self.extra_refused_cidrs]
            ),
            "AI_AGENTS_TRUSTED_PROXIES": ",".join(self.pod_cidrs),
        }


class Reenhance(_Model):
    tenant: str = "${TENANT}"
    ray_cluster_name: str = "${RAYCLUSTER_NAME}"
    extra_args: list[str] = []
    active_deadline_seconds: int = Field(default=21600, gt=0)


class Migration(_Model):
    backoff_limit: int = Field(default=2, ge=0)
    active_deadline_seconds: int = Field(default=900, gt=0)
    ttl_seconds_after_finished: int = Field(default=86400, ge=0)


class Values(_Model):
    name: str = "ai-agents"
    namespace: str = "ai-agents"
    labels: dict[str, str] = {}
    image: Image = Image()
    ray_version: str = Field(default_factory=installed_ray_version)
    # The pods' ServiceAccount (null: <name>), rendered unless createServiceAccount is false.
    service_account_name: str | None = None
    create_service_account: bool = True
    secret_name: str = "ai-agents-secrets"
    env: dict[str, str] = {
        "AI_AGENTS_LLM_BASE_URL": "https://openrouter.ai/api/v1",
        "AI_AGENTS_LLM_MODEL": "openai/gpt-4o-mini",
        "OTEL_SERVICE_NAME": "ai-agents",
    }
    head: HeadGroup = HeadGroup()
    worker_groups: list[WorkerGroup] = Field(
        default=[WorkerGroup(group_name="pools")], min_length=1
    )
    autoscaler: Autoscaler = Autoscaler()
    termination_grace_margin_seconds: int = Field(default=30, ge=0)
    serve: Serve = Serve()
    ingress: Ingress = Ingress()
    monitoring: Monitoring = Monitoring()
    ray_dashboard: RayDashboard = RayDashboard()
    cluster_network: ClusterNetwork = ClusterNetwork()
    ray_auth: RayAuth = RayAuth()
    gcs_fault_tolerance: GcsFaultTolerance = GcsFaultTolerance()
    network_policy: NetworkPolicyValues = NetworkPolicyValues()
    pod_security: PodSecurity = PodSecurity()
    pod_disruption_budget: DisruptionBudget = DisruptionBudget()
    reenhance: Reenhance = Reenhance()
    migration: Migration = Migration()
    ranking_fit: RankingFit = RankingFit()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS1035.match(v) or len(v) > MAX_NAME_LENGTH:
            raise ValueError(
                f"must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters "
                "(KubeRay adds suffixes to it)"
            )
        return v

    @field_validator("namespace", "secret_name")
    @classmethod
    def _dns1123(cls, v: str) -> str:
        if not _DNS1123.match(v):
            raise ValueError("must be a DNS-1123 label")
        return v

    @property
    def service_account(self) -> str:
        return self.service_account_name or self.name

    @property
    def ray_token_secret(self) -> str:
        return self.ray_auth.secret_name or f"{self.name}-ray-token"

    @property
    def redis_password_secret(self) -> str:
        return self.gcs_fault_tolerance.password_secret_name or self.secret_name

    @field_validator("ray_version")
    @classmethod
    def _ray_version(cls, v: str) -> str:
        installed = installed_ray_version()
        if v != installed:
            raise ValueError(
                f"'{v}' differs from the Ray this project pins and validates against "
                f"({installed}); the image must run the same Ray"
            )
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            if not _ENV_NAME.match(key):
                raise ValueError(f"'{key}' is not a valid environment variable name")
            if key in ALL_SECRET_KEYS or _SECRET_LIKE.search(key):
                raise ValueError(
                    f"'{key}' looks like a secret; secrets come only from the Secret "
                    "(secretName), never from values"
                )
        return env

    @model_validator(mode="after")
    def _unique_groups(self) -> Values:
        names = [g.group_name for g in self.worker_groups]
        if len(names) != len(set(names)):
            raise ValueError(f"worker group names must be unique (got {names})")
        return self


# ---------------------------------------------------------------------------- loading


def deep_merge(
    base: dict[str, Any], override: Mapping[str, Any], *, null_deletes: bool = False
) -> dict[str, Any]:
    """Layer ``override`` over ``base``: mappings merge, everything else is replaced. With
    ``null_deletes`` a ``null`` removes the key (pool overrides: ``autoscaling_config: null``);
    without it ``null`` is a value (values files: ``className: null`` means no class)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None and null_deletes:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value, null_deletes=null_deletes)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _known_keys(model: type[BaseModel], loc: Sequence[str | int]) -> set[str]:
    """The keys allowed next to the last element of ``loc`` (for 'did you mean')."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return set()
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return set()
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        current = (
            args[0] if args and getattr(annotation, "__origin__", None) is list else annotation
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {f.alias or n for n, f in current.model_fields.items()}
    return set()


def values_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        path = format_loc(loc)
        if err["type"] == "extra_forbidden":
            hint = suggestion(str(loc[-1]), _known_keys(Values, loc))
            problems.append(Problem(path, f"unknown field{hint}"))
        elif err["type"] == "missing":
            problems.append(Problem(path, "required field is missing"))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(Problem(path, msg))
    return problems

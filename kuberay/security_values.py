"""Values of what protects the rendered cluster: Ray's token authentication, the GCS' fault
tolerance (an external Redis), the NetworkPolicies, the pods' security context and the
PodDisruptionBudget of the worker groups. Kept apart from values.py to keep that file readable;
same strictness (unknown keys fail, keys are camelCase).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, validate_default=True
    )


class RayAuth(_Model):
    """Ray's token authentication (KubeRay ``authOptions``, Ray >= 2.52): the dashboard, the
    Jobs API and every Ray RPC refuse a caller without the token. The token is the key
    ``auth_token`` of the Secret ``secretName`` (null: ``<name>-ray-token``); a fixed name keeps
    the same token across the RayClusters a RayService upgrade creates."""

    enabled: bool = True
    secret_name: str | None = None

    @field_validator("secret_name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _DNS1123.match(v):
            raise ValueError("must be a DNS-1123 label")
        return v


class GcsFaultTolerance(_Model):
    """GCS fault tolerance (KubeRay ``gcsFaultToleranceOptions``): the GCS keeps its tables in
    an external Redis, so a restarted head recovers the cluster (worker nodes, actors, Serve's
    controller) instead of starting an empty one. The password is the key ``passwordKey`` of
    the Secret ``passwordSecretName`` (null: ``secretName``)."""

    enabled: bool = False
    redis_address: str = "redis.redis.svc:6379"
    password_secret_name: str | None = None
    password_key: str = "REDIS_PASSWORD"
    # null: KubeRay's default, the RayCluster's UID (each cluster of an upgrade apart)
    external_storage_namespace: str | None = None

    @field_validator("redis_address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not _HOST_PORT.match(v):
            raise ValueError(f"'{v}' is not host:port (e.g. redis.redis.svc:6379)")
        return v


class Peer(_Model):
    """One side of an allowed connection: an address block (``cidr``, optional ``except``) or
    the pods of a namespace (``namespace``, optional ``podLabels``), on ``ports``."""

    cidr: str | None = None
    except_: list[str] = Field(default=[], alias="except")
    namespace: str | None = None
    pod_labels: dict[str, str] = {}
    ports: list[int] = Field(min_length=1)
    protocols: list[Literal["TCP", "UDP"]] = ["TCP"]

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_network(v, strict=True)
            except ValueError as exc:
                raise ValueError(f"'{v}' is not a CIDR block ({exc})") from None
        return v

    @field_validator("except_")
    @classmethod
    def _except(cls, blocks: list[str]) -> list[str]:
        for block in blocks:
            cls._cidr(block)
        return blocks

    @field_validator("ports")
    @classmethod
    def _ports(cls, ports: list[int]) -> list[int]:
        for port in ports:
            if not 1 <= port <= 65535:
                raise ValueError(f"{port} is not a port (1-65535)")
        return ports

    @model_validator(mode="after")
    def _one_kind(self) -> Peer:
        if (self.cidr is None) == (self.namespace is None):
            raise ValueError("set exactly one of cidr and namespace")
        if self.except_ and self.cidr is None:
            raise ValueError("except needs cidr")
        if self.pod_labels and self.namespace is None:
            raise ValueError("podLabels needs namespace")
        return self


class Egress(_Model):
    """Where the pods may connect to; nothing else is reachable. Narrow the defaults to your
    addresses: the LLM provider, your SDP servers (on-premises networks or the cloud), the
    PostgreSQL, the OpenTelemetry collector, the Kubernetes API (the autoscaler on the head)."""

    dns: list[Peer] = [
        Peer(
            namespace="kube-system",
            pod_labels={"k8s-app": "kube-dns"},
            ports=[53],
            protocols=["UDP", "TCP"],
        )
    ]
    postgres: list[Peer] = [Peer(cidr="10.0.0.0/8", ports=[5432])]
    llm: list[Peer] = [Peer(cidr="0.0.0.0/0", except_=PRIVATE_RANGES, ports=[443])]
    sdp: list[Peer] = [Peer(cidr="0.0.0.0/0", ports=[443, 8080])]
    otlp: list[Peer] = [Peer(namespace="observability", ports=[4317, 4318])]
    redis: list[Peer] = [Peer(namespace="redis", ports=[6379])]
    kubernetes_api: list[Peer] = [Peer(cidr="0.0.0.0/0", ports=[443, 6443])]


class NetworkPolicyValues(_Model):
    """The NetworkPolicies (kuberay/manifests/network_policy.py): every pod of this deployment
    is denied by default; the Serve port is open to the ingress controller's namespace and to
    Prometheus, Ray's metrics ports to Prometheus, Ray's ports to this cluster's pods and the
    dashboard to the KubeRay operator; egress only to ``egress``."""

    enabled: bool = True
    ingress_controller_namespace: str = "ingress-nginx"
    monitoring_namespace: str = "monitoring"
    kuberay_operator_namespace: str = "kuberay-system"
    kuberay_operator_pod_labels: dict[str, str] = {"app.kubernetes.io/name": "kuberay-operator"}
    egress: Egress = Egress()

    @field_validator(
        "ingress_controller_namespace", "monitoring_namespace", "kuberay_operator_namespace"
    )
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not _DNS1123.match(v):
            raise ValueError("must be a DNS-1123 label")
        return v


class PodSecurity(_Model):
    """The pods' user and group (the image's ``ray`` user, 1000, group ``users``, 100). Every
    pod runs as that non-root user with the Pod Security "restricted" settings."""

    run_as_user: int = Field(default=1000, ge=1)
    run_as_group: int = Field(default=100, ge=0)
    fs_group: int = Field(default=100, ge=0)


class DisruptionBudget(_Model):
    """One PodDisruptionBudget per worker group: a node drain evicts at most
    ``maxUnavailable`` of its pods at once (the autoscaler's own scale-down is not an
    eviction and is not held back)."""

    enabled: bool = True
    max_unavailable: int = Field(default=1, ge=1)

"""Ray on the harness' hosts, started the way KubeRay starts it in the rendered pods.

Each node is one ``Container`` running ``ray start --block`` with the rendered group's
``rayStartParams`` (every port pinned, the head with ``num-cpus: 0``), the rendered container's
plain environment, and what KubeRay injects: token authentication (``RAY_AUTH_MODE=token``; the
token from a file, ``RAY_AUTH_TOKEN_PATH``), and with GCS fault tolerance the Redis address,
``--redis-password`` and the storage namespace on the head, and a 600 s GCS reconnect timeout
on the workers. Secrets are files: the service's under ``AI_AGENTS_SECRETS_DIR`` (the rendered
path replaced by the run's), the token and the Redis password each a file of their own.
``--redis-password`` is what Ray takes (KubeRay passes it the same way): a small launcher reads
it from its file so it is not on our command line; Ray hands it on to its GCS server's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.ingress_mode import IngressMode
from kuberay.manifests.pod_security import SECRETS_DIR_VARIABLE
from kuberay.manifests.ray_ports import GCS_PORT
from kuberay.values import Values, deep_merge
from kuberay.values_files import values_from_dict
from local_stack.hosts.containers import Container
from local_stack.hosts.network import Host
from local_stack.hosts.services import LLM_PORT, POSTGRES_PORT, REDIS_PORT, SDP_PORT

REPO = Path(__file__).resolve().parents[2]
OBJECT_STORE_BYTES = 100 * 1024 * 1024  # small: every node shares this machine's memory
# ``ray start`` with the Redis password read from the file named by RAY_REDIS_PASSWORD_FILE.
LAUNCHER = (
    "import os, sys\n"
    "from ray.scripts.scripts import main\n"
    "args = ['ray', 'start', *sys.argv[1:]]\n"
    "path = os.environ.pop('RAY_REDIS_PASSWORD_FILE', None)\n"
    "if path:\n"
    "    args.append('--redis-password=' + open(path).read().strip())\n"
    "sys.argv = args\n"
    "main()\n"
)


@dataclass(frozen=True)
class RenderedGroup:
    """What the rendered RayService says about one group's pods."""

    start_params: Mapping[str, str]
    env: Mapping[str, str]  # the Ray container's plain (non-secret) variables


def rendered_groups(rayservice: Mapping[str, Any]) -> tuple[RenderedGroup, RenderedGroup]:
    """(head, first worker group) of a rendered RayService."""
    cluster = rayservice["spec"]["rayClusterConfig"]

    def group(spec: Mapping[str, Any]) -> RenderedGroup:
        (container,) = spec["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        return RenderedGroup(dict(spec["rayStartParams"]), env)

    return group(cluster["headGroupSpec"]), group(cluster["workerGroupSpecs"][0])


@dataclass
class RayLayout:
    """Where one run keeps what its Ray containers read."""

    run_dir: Path
    secrets_dir: Path  # the service's secret files (AI_AGENTS_SECRETS_DIR)
    token_file: Path
    redis_password_file: Path | None
    storage_namespace: str

    def base_env(
        self, host: Host, group: RenderedGroup, extra: Mapping[str, str]
    ) -> dict[str, str]:
        python_bin = os.path.dirname(sys.executable)
        home = self.run_dir / "home" / host.name
        home.mkdir(parents=True, exist_ok=True)
        env = {
            **group.env,
            SECRETS_DIR_VARIABLE: str(self.secrets_dir),
            "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_file),
            **extra,
        }
        return env

    def _argv(self, host: Host, group: RenderedGroup, *first: str) -> list[str]:
        params = [f"--{key}={value}" for key, value in sorted(group.start_params.items())]
        return [
            sys.executable,
            "-c",
            LAUNCHER,
            *first,
            "--block",
            f"--node-ip-address={host.ip}",
            f"--temp-dir={self.run_dir / 'ray' / host.name}",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
            "--disable-usage-stats",
            *params,
        ]

    def head(
        self,
        host: Host,
        group: RenderedGroup,
        extra_env: Mapping[str, str],
        *,
        redis_address: str | None,
        autoscaling_config: Path | None,
    ) -> Container:
        env = dict(extra_env)
        argv_extra = [f"--port={GCS_PORT}"]
        if redis_address is not None:
            assert self.redis_password_file is not None
            env |= {
                "RAY_REDIS_ADDRESS": redis_address,
                "RAY_REDIS_PASSWORD_FILE": str(self.redis_password_file),
                "RAY_external_storage_namespace": self.storage_namespace,
            }
        if autoscaling_config is not None:
            argv_extra.append(f"--autoscaling-config={autoscaling_config}")
            env["AUTOSCALER_UPDATE_INTERVAL_S"] = "2"
        return Container(
            "ray-head",
            host.namespace,
            self._argv(host, group, "--head", *argv_extra),
            self.base_env(host, group, env),
            self.run_dir / "logs" / f"{host.name}.log",
            own_pids=True,
        )

    def worker_spec(
        self,
        host: Host,
        head: Host,
        group: RenderedGroup,
        extra_env: Mapping[str, str],
        *,
        num_cpus: int,
        fault_tolerant: bool,
    ) -> tuple[list[str], dict[str, str]]:
        env = dict(extra_env)
        env |= {"RAY_CLOUD_INSTANCE_ID": host.name, "RAY_NODE_TYPE_NAME": "pools"}
        if fault_tolerant:
            env["RAY_gcs_rpc_server_reconnect_timeout_s"] = "600"  # what KubeRay sets
        argv = self._argv(host, group, f"--address={head.ip}:{GCS_PORT}", f"--num-cpus={num_cpus}")
        return argv, self.base_env(host, group, env)

    def worker(
        self,
        host: Host,
        head: Host,
        group: RenderedGroup,
        extra_env: Mapping[str, str],
        *,
        num_cpus: int,
        fault_tolerant: bool,
    ) -> Container:
        argv, env = self.worker_spec(
            host, head, group, extra_env, num_cpus=num_cpus, fault_tolerant=fault_tolerant
        )
        return Container(
            f"ray-{host.name}",
            host.namespace,
            argv,
            env,
            self.run_dir / "logs" / f"{host.name}.log",
            own_pids=True,
        )


def autoscaling_config(
    *, run: str, state_path: Path, worker_cpus: int, max_workers: int, idle_timeout_s: float
) -> dict[str, Any]:
    """The monitor's cluster config: the head (0 CPUs) and one worker type whose nodes the
    ``HostNodeProvider`` starts on spare hosts."""
    return {
        "cluster_name": run,
        "max_workers": max_workers,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_s / 60,
        "provider": {
            "type": "external",
            "module": "local_stack.hosts.node_provider.HostNodeProvider",
            "state_path": str(state_path),
            "head_node_type": "head",
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            "head": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "pools": {
                "resources": {"CPU": worker_cpus},
                "node_config": {},
                "min_workers": 0,
                "max_workers": max_workers,
            },
        },
        "head_node_type": "head",
        "auth": {},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


@dataclass
class ClusterSpec:
    workers: int = 2
    spare: int = 0  # hosts the autoscaler may start workers on
    worker_cpus: int = 2
    gcs_fault_tolerance: bool = False
    ingress_mode: IngressMode = "proxy"
    llm_latency_s: float = 0.5
    enforce_policy: bool = True
    tenants: int = 2
    autoscaler_idle_timeout_s: float = 60.0
    values: Mapping[str, Any] = field(default_factory=dict)  # laid over harness_values


def harness_values(spec: ClusterSpec, hosts: Mapping[str, Host]) -> Values:
    """The deployment's values with every egress peer pointing at the harness' hosts."""

    def block(name: str, port: int) -> list[dict[str, Any]]:
        return [{"cidr": f"{hosts[name].ip}/32", "ports": [port]}] if name in hosts else []

    cpu = str(spec.worker_cpus)
    base = {
        "workerGroups": [
            {
                "groupName": "pools",
                "replicas": spec.workers,
                "minReplicas": spec.workers,
                "maxReplicas": spec.workers + spec.spare,
                "resources": {
                    "requests": {"cpu": cpu, "memory": "2Gi"},
                    "limits": {"cpu": cpu, "memory": "2Gi"},
                },
            }
        ],
        "env": {
            "AI_AGENTS_LLM_BASE_URL": f"http://{hosts['llm'].ip}:{LLM_PORT}/api/v1",
            "AI_AGENTS_LLM_MODEL": "simulated",
            "AI_AGENTS_LOG_LEVEL": "INFO",
        },
        "serve": {"ingressMode": spec.ingress_mode},
        "gcsFaultTolerance": {
            "enabled": spec.gcs_fault_tolerance,
            "redisAddress": f"{hosts['redis'].ip}:{REDIS_PORT}"
            if "redis" in hosts
            else "redis:6379",
        },
        "networkPolicy": {
            "egress": {
                "postgres": block("db", POSTGRES_PORT),
                "llm": block("llm", LLM_PORT),
                "sdp": block("sdp", SDP_PORT),
                "otlp": [],
                "redis": block("redis", REDIS_PORT),
                "kubernetesApi": [],
            }
        },
    }
    return values_from_dict(deep_merge(base, dict(spec.values)), "harness values")


@dataclass
class Rendered:
    documents: dict[str, list[dict[str, Any]]]

    @property
    def rayservice(self) -> dict[str, Any]:
        (doc,) = self.documents["rayservice.yaml"]
        return doc

    @property
    def serve_config(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.rayservice["spec"]["serveConfigV2"]))

    @property
    def policies(self) -> list[dict[str, Any]]:
        return list(self.documents.get("networkpolicy.yaml", []))

"""A cluster of real hosts: the rendered KubeRay deployment on network namespaces.

``HostCluster`` wires one host per role on a private subnet (``network``): the Ray head, the
worker hosts (and spare hosts the autoscaler may start workers on), PostgreSQL, Redis, the SDP
and LLM simulators, the ingress controller (where webhooks come from) and the KubeRay operator
(which deploys the Serve application). It renders the deployment from values that point the
egress rules at those hosts (``harness_values``), starts Ray on each host as KubeRay would
(``ray_nodes``), turns the rendered NetworkPolicies into packet filter rules on every host
(``firewall``), and deploys ``serveConfigV2`` through the head's dashboard (``operator``).

``stop`` removes everything, whatever state the run is in; use the cluster as a context
manager so a failing test still tears it down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from kuberay.manifests.ray_ports import DASHBOARD_PORT
from kuberay.manifests.serve_config import SERVE_PORT
from kuberay.render import manifest_documents
from kuberay.validation.network_rules import Endpoint
from kuberay.values import Values
from local_stack.hosts import firewall
from local_stack.hosts.containers import Container, write_secret
from local_stack.hosts.netns import NamespaceLoop, exec_argv
from local_stack.hosts.network import Host, Network, kill_namespace_processes, namespace_pids
from local_stack.hosts.node_provider import WorkerPods, write_state
from local_stack.hosts.operator import Operator
from local_stack.hosts.ray_nodes import (
    REPO,
    ClusterSpec,
    RayLayout,
    Rendered,
    autoscaling_config,
    harness_values,
    rendered_groups,
)
from local_stack.hosts.services import (
    HostSimulators,
    NetworkDatabase,
    Redis,
    start_postgres,
    start_redis,
    wait_for_port,
)
from local_stack.tenants import Tenant, create_tenants

log = logging.getLogger(__name__)
LLM_KEY = "sk-harness"


class HostCluster:
    def __init__(self, spec: ClusterSpec | None = None, *, label: str = "hosts") -> None:
        self.spec = spec or ClusterSpec()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"aah-{label}-", dir="/tmp"))
        self.network = Network()
        self.containers: dict[str, Container] = {}
        self.sims: HostSimulators | None = None
        self.db: NetworkDatabase | None = None
        self.redis: Redis | None = None
        self.operator: Operator | None = None
        self.worker_pods: WorkerPods | None = None  # the autoscaler's workers
        self.loops: dict[str, NamespaceLoop] = {}
        self.tenants: list[Tenant] = []
        self.token = secrets.token_hex(32)
        self.rendered: Rendered | None = None
        self.values: Values | None = None
        self.layout: RayLayout | None = None
        self.endpoints: dict[str, Endpoint] = {}
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ hosts

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    @property
    def worker_names(self) -> list[str]:
        return [f"w{i + 1}" for i in range(self.spec.workers)]

    @property
    def spare_names(self) -> list[str]:
        return [f"s{i + 1}" for i in range(self.spec.spare)]

    def serve_urls(self, names: list[str] | None = None) -> list[str]:
        names = names or self.worker_names
        return [f"http://{self.host(n).ip}:{SERVE_PORT}" for n in names]

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host('head').ip}:{DASHBOARD_PORT}"

    def loop(self, host: str) -> NamespaceLoop:
        if host not in self.loops:
            self.loops[host] = NamespaceLoop(self.host(host).namespace)
        return self.loops[host]

    # ------------------------------------------------------------------ start

    def start(self) -> HostCluster:
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.timings["start_s"] = round(time.monotonic() - started, 1)
        return self

    def _start(self) -> None:
        spec = self.spec
        self.network.create()
        names = ["head", *self.worker_names, *self.spare_names, "db", "sdp", "llm"]
        names += ["ingress", "operator"] + (["redis"] if spec.gcs_fault_tolerance else [])
        for name in names:
            self.network.add_host(name)
        self.sims = HostSimulators(
            self.host("sdp"), self.host("llm"), llm_latency_s=spec.llm_latency_s
        )
        self.db = start_postgres(self.host("db"), self.run_dir / "db", self.run_dir / "logs")
        if spec.gcs_fault_tolerance:
            self.redis = start_redis(self.host("redis"), self.run_dir)
        self.values = harness_values(spec, self.network.hosts)
        self.rendered = Rendered(manifest_documents(self.values))
        self.layout = self._secrets()
        self.endpoints = self._endpoints()
        if spec.enforce_policy:
            self.apply_policy(self.rendered.policies)
        self._start_ray()
        self.operator = Operator(
            self.host("operator").namespace,
            self.dashboard_url,
            self.token,
            self.rendered.serve_config,
        )
        self.operator.submit()
        self.operator.wait_running(timeout_s=300)
        self.operator.reconcile_forever()
        assert self.db is not None and self.sims is not None
        self.tenants = self.loop("operator").run(
            create_tenants(
                self.db.database, spec.tenants, "hc", sdp_url=self.sims.sdp_url, sims=self.sims
            )
        )

    def _secrets(self) -> RayLayout:
        assert self.db is not None
        secrets_dir = self.run_dir / "secrets"
        service = secrets_dir / "service"
        db = self.db.database
        for key, value in {
            "AI_AGENTS_DATABASE_URL": db.service_url,
            "AI_AGENTS_ENCRYPTION_KEYS": db.encryption_keys,
            "AI_AGENTS_ADMIN_TOKEN": db.admin_token,
            "AI_AGENTS_LLM_API_KEY": LLM_KEY,
            "AI_AGENTS_METRICS_TOKEN": secrets.token_hex(16),
        }.items():
            write_secret(service, key, value)
        token = write_secret(secrets_dir, "ray-token", self.token)
        redis = None
        if self.redis is not None:
            redis = write_secret(secrets_dir, "redis-password", self.redis.password)
        return RayLayout(self.run_dir, service, token, redis, f"{self.network.run}-ray")

    def _endpoints(self) -> dict[str, Endpoint]:
        assert self.values is not None and self.rendered is not None
        cluster = self.rendered.rayservice["spec"]["rayClusterConfig"]
        head_labels = cluster["headGroupSpec"]["template"]["metadata"]["labels"]
        worker_labels = cluster["workerGroupSpecs"][0]["template"]["metadata"]["labels"]
        ns = self.values.namespace
        policy = self.values.network_policy
        roles: dict[str, tuple[str, dict[str, str]]] = {
            "head": (ns, {**head_labels, "ray.io/node-type": "head"}),
            "db": ("databases", {"app": "postgres"}),
            "redis": ("redis", {"app": "redis"}),
            "sdp": ("sdp", {"app": "servicedesk"}),
            "llm": ("llm", {"app": "llm"}),
            "ingress": (policy.ingress_controller_namespace, {"app": "ingress-nginx"}),
            "operator": (
                policy.kuberay_operator_namespace,
                dict(policy.kuberay_operator_pod_labels),
            ),
        }
        for name in [*self.worker_names, *self.spare_names]:
            roles[name] = (ns, {**worker_labels, "ray.io/node-type": "worker"})
        return {
            name: Endpoint(name, namespace, labels, self.host(name).ip)
            for name, (namespace, labels) in roles.items()
            if name in self.network.hosts
        }

    def apply_policy(self, policies: list[dict[str, Any]]) -> dict[str, firewall.HostRules]:
        """Translate ``policies`` into every host's packet filter rules (replacing any)."""
        applied = {}
        for name, endpoint in self.endpoints.items():
            rules = firewall.host_rules(endpoint, policies, self.endpoints.values())
            firewall.apply(self.host(name).namespace, rules)
            applied[name] = rules
        return applied

    def _extra_env(self, host: str) -> dict[str, str]:
        """What each host keeps to itself that a pod has in its own /tmp: HAProxy's config,
        sockets and state (Serve's defaults are one shared path under /tmp)."""
        if self.spec.ingress_mode != "haproxy":
            return {}
        state = Path(f"/tmp/{self.network.run}-hp/{host}")  # short: socket paths are capped
        state.mkdir(parents=True, exist_ok=True)
        return {
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(state / "haproxy.cfg"),
            "RAY_SERVE_HAPROXY_SOCKET_PATH": str(state / "admin.sock"),
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(state),
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(state / "server-state"),
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(state / "metrics.sock"),
        }

    def haproxy_servers(self) -> dict[str, list[str]]:
        """Per host, the ``server`` lines of the HAProxy config Serve generated there."""
        out: dict[str, list[str]] = {}
        for path in sorted(Path(f"/tmp/{self.network.run}-hp").rglob("*.cfg")):
            host = path.relative_to(Path(f"/tmp/{self.network.run}-hp")).parts[0]
            lines = [ln.strip() for ln in path.read_text().splitlines()]
            out.setdefault(host, []).extend(ln for ln in lines if ln.startswith("server "))
        return out

    def _start_ray(self) -> None:
        assert self.rendered is not None and self.layout is not None
        head_group, worker_group = rendered_groups(self.rendered.rayservice)
        config_path = None
        if self.spec.spare:
            state = self.run_dir / "autoscaler-state.json"
            slots = {}
            for name in self.spare_names:
                argv, env = self.layout.worker_spec(
                    self.host(name),
                    self.host("head"),
                    worker_group,
                    self._extra_env(name),
                    num_cpus=self.spec.worker_cpus,
                    fault_tolerant=self.spec.gcs_fault_tolerance,
                )
                slots[name] = {
                    "ip": self.host(name).ip,
                    "namespace": self.host(name).namespace,
                    "argv": argv,
                    "env": env,
                    "log": str(self.run_dir / "logs" / f"{name}.log"),
                }
            write_state(state, self.host("head").ip, slots)
            self.worker_pods = WorkerPods(state).start()
            config_path = self.run_dir / "autoscaling.json"
            config_path.write_text(
                json.dumps(
                    autoscaling_config(
                        run=self.network.run,
                        state_path=state,
                        worker_cpus=self.spec.worker_cpus,
                        max_workers=self.spec.spare,
                        idle_timeout_s=self.spec.autoscaler_idle_timeout_s,
                    )
                )
            )
        head = self.layout.head(
            self.host("head"),
            head_group,
            self._extra_env("head"),
            redis_address=self.redis.address if self.redis else None,
            autoscaling_config=config_path,
        )
        self.containers["head"] = head.start()
        wait_for_port(self.host("operator").namespace, self.host("head").ip, DASHBOARD_PORT, 120)
        for name in self.worker_names:
            worker = self.layout.worker(
                self.host(name),
                self.host("head"),
                worker_group,
                self._extra_env(name),
                num_cpus=self.spec.worker_cpus,
                fault_tolerant=self.spec.gcs_fault_tolerance,
            )
            self.containers[name] = worker.start()

    def all_containers(self) -> dict[str, Container]:
        """The harness' own containers and the autoscaler's workers (by host) right now."""
        pods = dict(self.worker_pods.pods) if self.worker_pods else {}
        return {**self.containers, **pods}

    # ------------------------------------------------------------------ actions

    def kill_gcs(self) -> float:
        """SIGKILL the head's GCS server; ``ray start --block`` then stops the head's other
        processes and exits, and the head's container is started again (KubeRay: the
        container exits, the kubelet restarts it). Returns when it was killed."""
        pid = self.gcs_pid()
        assert pid is not None, "no gcs_server on the head"
        os.kill(pid, signal.SIGKILL)
        return time.time()

    def kill_head(self) -> float:
        """SIGKILL every process of the head host at once (a lost node, a deleted pod); its
        container is started again after the restart back-off."""
        killed = time.time()
        kill_namespace_processes(self.host("head").namespace)
        return killed

    def cut_link(self, host: str, seconds: float) -> tuple[float, float]:
        """Unplug ``host``'s cable for ``seconds``; returns (cut, restored) times."""
        self.network.set_link(host, up=False)
        cut = time.time()
        try:
            time.sleep(seconds)
        finally:
            self.network.set_link(host, up=True)
        return cut, time.time()

    def gcs_pid(self) -> int | None:
        for pid in namespace_pids(self.host("head").namespace):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "gcs_server":
                    return pid
        return None

    def ray_nodes(self) -> list[dict[str, Any]]:
        """``ray.nodes()``-like rows from the dashboard (through the operator's host)."""
        assert self.operator is not None
        response = self.operator._call("GET", "/nodes?view=summary")
        response.raise_for_status()
        return list(response.json()["data"]["summary"])

    def run_cli(
        self, args: list[str], *, host: str = "operator", timeout_s: float = 600, token: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``ai-agents ARGS`` run on a host (the operator's by default) with the cluster's
        token in a file (``RAY_AUTH_TOKEN_PATH``), as an operator's shell would have it."""
        assert self.layout is not None
        env = {
            "PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "HOME": str(self.run_dir / "home" / host),
            "LANG": "C.UTF-8",
        }
        if token:
            env["RAY_AUTH_TOKEN_PATH"] = str(self.layout.token_file)
        ai_agents = shutil.which("ai-agents") or "ai-agents"
        return subprocess.run(
            exec_argv(self.host(host).namespace, [ai_agents, *args]),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Everything this cluster started, in any state; never raises."""
        steps: list[Any] = [
            *([self.operator.stop] if self.operator else []),
            *([self.worker_pods.stop] if self.worker_pods else []),
            *[lambda c=c: c.stop(grace_s=3) for c in self.containers.values()],
            *([self.sims.stop] if self.sims else []),
            *([self.db.stop] if self.db else []),
            *([self.redis.stop] if self.redis else []),
            *[lp.stop for lp in self.loops.values()],
            self.network.destroy,
        ]
        for step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001 - tear down the rest regardless
                log.exception("tear-down step failed")
        from local_stack.database import remove_data_dir

        with contextlib.suppress(Exception):
            remove_data_dir(self.run_dir / "db")
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(f"/tmp/{self.network.run}-hp", ignore_errors=True)

    def __enter__(self) -> HostCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

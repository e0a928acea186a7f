"""A multi-node Ray cluster on this machine for ``benchmarks.scaleout`` and its test.

``ray.cluster_utils.Cluster`` runs one raylet per node; every node listens on loopback only, and
the cluster's files (including the ``ray_current_cluster`` address file that ``ray.init()``
without an address reads) live in the run's own directory (``RAY_TMPDIR``), so another Ray
instance on a shared machine is neither found nor disturbed. Stopping kills only the processes
of this cluster's nodes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from core.ports import free_port
from local_stack.environment import apply_environment
from local_stack.ray_serve import APP_NAME, serve_instance_details


class LocalCluster:
    """Head node (``head_cpus``: Ingress, Dispatcher, ContextGatherer) plus worker nodes of
    ``node_cpus`` each, Serve with one HTTP proxy on the head."""

    def __init__(
        self, env: dict[str, str], *, head_cpus: float, node_cpus: float, temp_dir: Path
    ) -> None:
        import ray
        from ray.cluster_utils import Cluster

        prepare_environment(env, temp_dir)
        self.node_cpus = node_cpus
        self.temp_dir = temp_dir
        self.cluster = Cluster(
            initialize_head=True,
            connect=False,
            head_node_args={
                "num_cpus": head_cpus,
                "node_ip_address": "127.0.0.1",
                "include_dashboard": False,
                "dashboard_agent_listen_port": free_port(),
                "gcs_server_port": free_port(),
            },
        )
        self.url = connect_and_start_serve(self.cluster.address)
        self.workers: list[Any] = []
        self._ray = ray

    @property
    def head_node_id(self) -> str:
        # initialize_head=True set it; Ray's Cluster declares head_node only as `= None`
        return str(self.cluster.head_node.node_id)  # type: ignore[attr-defined]

    def worker_count(self) -> int:
        return len(self.workers)

    def ensure_workers(self, count: int, resources: dict[str, float] | None = None) -> None:
        """Add worker nodes up to ``count``; ``resources``: custom resources of the new ones
        (e.g. a marker that pins a deployment to them)."""
        while len(self.workers) < count:
            self.workers.append(
                self.cluster.add_node(
                    num_cpus=self.node_cpus, node_ip_address="127.0.0.1", resources=resources
                )
            )

    def remove_worker_with(self, node_ids: list[str]) -> dict[str, Any]:
        """Kill the first worker node that holds one of ``node_ids``, as a lost machine dies:
        its Ray processes (``Cluster.remove_node``, not graceful) and its replica processes
        (SIGKILL; ``remove_node`` leaves worker processes to notice the raylet is gone)."""
        import signal

        node = next((n for n in self.workers if n.node_id in node_ids), self.workers[0])
        replica_pids = [
            r["pid"]
            for info in _deployments().values()
            for r in info.get("replicas", [])
            if r.get("node_id") == node.node_id and r.get("pid")
        ]
        self.workers.remove(node)
        self.cluster.remove_node(node, allow_graceful=False)
        for pid in replica_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return {"node_id": node.node_id, "replica_pids_killed": replica_pids}

    def deploy(self, app: Any, *, workers: int, node_delay_s: float = 5.0) -> None:
        """Deploy, then add worker nodes up to ``workers`` ``node_delay_s`` later, while Serve
        waits for the pending replicas: the head's small pools are placed on the head first,
        and the replicas that reserve more CPU than the head has left wait for the new nodes
        — the chain KubeRay runs (pending replica -> resource demand -> new worker pod)."""
        import threading

        from ray import serve

        failed: list[BaseException] = []

        def run() -> None:  # Ray starts nodes only from the main thread (signal handlers)
            try:
                serve.run(app, name=APP_NAME, route_prefix="/")
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                failed.append(exc)

        deploying = threading.Thread(target=run, name="serve-run")
        deploying.start()
        if len(self.workers) < workers:
            time.sleep(node_delay_s)
            self.ensure_workers(workers)
        deploying.join()
        if failed:
            raise failed[0]

    def shutdown(self) -> None:
        from ray import serve

        try:
            serve.shutdown()
        finally:
            self._ray.shutdown()
            self.cluster.shutdown()
            self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        """Worker processes that outlive their raylet (``remove_node`` leaves them behind): every
        process naming this run's own temp dir on its command line is ours."""
        # Ray's dir under RAY_TMPDIR, not PostgreSQL's
        kill_processes_naming([str(self.temp_dir / "ray")])


def processes_naming(markers: list[str]) -> list[Any]:
    """Every process but this one with one of ``markers`` in a command-line argument."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = proc.info["cmdline"] or []
            if proc.pid != os.getpid() and any(m in part for part in cmdline for m in markers):
                found.append(proc)
    return found


def kill_processes_naming(markers: list[str], *, grace_s: float = 0.0) -> list[int]:
    """SIGTERM (if ``grace_s``) then SIGKILL every process naming one of ``markers``; returns
    the pids of those still alive afterwards (empty when the cluster is gone)."""
    import psutil

    procs = processes_naming(markers)
    if grace_s > 0:
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, procs = psutil.wait_procs(procs, timeout=grace_s)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=5)
    return [p.pid for p in processes_naming(markers)]


def prepare_environment(env: dict[str, str], temp_dir: Path) -> None:
    """What every local multi-node cluster needs in this process before Ray starts: ``env`` as
    the service's whole ``AI_AGENTS_*`` environment (nodes started from here, and their
    replicas, inherit it), Ray's files under ``temp_dir`` (``RAY_TMPDIR``: the
    ``ray_current_cluster`` address file too, so no other Ray instance finds this one), and
    every node on loopback."""
    import ray

    apply_environment(env, replace=True)
    os.environ["RAY_TMPDIR"] = str(temp_dir)
    # Loopback only: with this off, Ray resolves every node's address to 127.0.0.1 instead of
    # the machine's outward-facing address (children read the variable).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False


def connect_and_start_serve(address: str) -> str:
    """Connect this driver to the cluster at ``address`` and start Serve with one HTTP proxy,
    on the head node only, at a free loopback port; returns its URL."""
    import ray
    from ray import serve

    ray.init(
        address=address, namespace=APP_NAME, log_to_driver=False, logging_level=logging.WARNING
    )
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port, "location": "HeadOnly"})
    return f"http://127.0.0.1:{port}"


def _deployments() -> dict[str, Any]:
    details = serve_instance_details()
    return details.get("applications", {}).get(APP_NAME, {}).get("deployments", {})


def replicas_not_running() -> list[dict[str, Any]]:
    """Replicas in any state but RUNNING (starting, stopping...), with their node."""
    return [
        {"deployment": name, "state": r.get("state"), "node_id": r.get("node_id")}
        for name, info in _deployments().items()
        for r in info.get("replicas", [])
        if r.get("state") != "RUNNING"
    ]


def deployment_nodes() -> dict[str, list[str]]:
    """Node id of every RUNNING replica, per deployment (from the Serve controller)."""
    return {
        name: [r["node_id"] for r in info.get("replicas", []) if r.get("state") == "RUNNING"]
        for name, info in _deployments().items()
    }


def scaled_app(
    args: argparse.Namespace, *, replicas: int, autoscaling: dict[str, Any] | None = None
) -> Any:
    """The product graph with Enhancer/Synthesizer reserving ``args.replica_cpus`` each.

    ``replicas`` > 0: exactly that many replicas of each, holding ``args.per_replica`` jobs,
    and the Dispatcher's cap at ``replicas x per_replica``. 0: the pools' autoscaling and
    concurrency exactly as ``actors/deployment_options.py`` holds them (only the CPU reservation
    changes, so that replicas need worker nodes), with ``autoscaling`` (e.g. a higher
    ``max_replicas``) laid over each pool's ``autoscaling_config``."""
    from actors.deployment_options import DISPATCHER, ENHANCER, SYNTHESIZER, pool_options
    from benchmarks.rig.apps import build_pipeline_app

    overrides: dict[str, dict[str, Any]] = {}
    for name in (ENHANCER, SYNTHESIZER):
        options: dict[str, Any] = {"ray_actor_options": {"num_cpus": args.replica_cpus}}
        if replicas:
            options.update(
                num_replicas=replicas,
                autoscaling_config=None,
                max_ongoing_requests=args.per_replica,
            )
        else:
            config = pool_options(name)["autoscaling_config"]
            options["autoscaling_config"] = {**config, **(autoscaling or {})}
            policy = config.get("policy")
            if isinstance(policy, dict):
                # the policy asks only for replicas that can start: tell it this run's replica
                # CPUs and the cluster's CPUs at its largest (the autoscaler may add nodes up to
                # max(--replicas)), as `kuberay render` does for a RayService
                kwargs = {
                    **(policy.get("policy_kwargs") or {}),
                    "cpus_per_replica": float(args.replica_cpus),
                    "max_cluster_cpus": float(args.head_cpus + max(args.replicas) * args.node_cpus),
                }
                options["autoscaling_config"]["policy"] = {**policy, "policy_kwargs": kwargs}
        overrides[name] = options
    if replicas:
        dispatcher = pool_options(DISPATCHER)["ray_actor_options"]
        overrides[DISPATCHER] = {
            "ray_actor_options": {
                **dispatcher,
                "runtime_env": {
                    "env_vars": {
                        "AI_AGENTS_DISPATCH_MAX_INFLIGHT": str(replicas * args.per_replica)
                    }
                },
            }
        }
    return build_pipeline_app(overrides)

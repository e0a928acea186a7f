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
import os
import time
from pathlib import Path
from typing import Any

from cli.local_stack.environment import apply_environment
from cli.local_stack.ray_serve import APP_NAME, serve_instance_details
from pipeline.core.ports import free_port


class LocalCluster:
    """Head node (``head_cpus``: Ingress, Dispatcher, ContextGatherer) plus worker nodes of
    ``node_cpus`` each, Serve with one HTTP proxy on the head."""

    def __init__(
        self, env: dict[str, str], *, head_cpus: float, node_cpus: float, temp_dir: Path
    ) -> None:
        import ray
        from ray import serve
        from ray.cluster_utils import Cluster

        # Nodes started from here, and their replicas, inherit it.
        apply_environment(env, replace=True)
        os.environ["RAY_TMPDIR"] = str(temp_dir)
        # Loopback only: with this off, Ray resolves every node's address to 127.0.0.1
        # instead of the machine's outward-facing address (children read the variable).
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        ray._private.ray_constants.ENABLE_RAY_CLUSTER = False
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
        ray.init(
            address=self.cluster.address,
            namespace=APP_NAME,
            log_to_driver=False,
            logging_level="warning",
        )
        self.workers: list[Any] = []
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        serve.start(http_options={"host": "127.0.0.1", "port": port, "location": "HeadOnly"})
        self._ray = ray

    @property
    def head_node_id(self) -> str:
        return str(self.cluster.head_node.node_id)

    def worker_count(self) -> int:
        return len(self.workers)

    def ensure_workers(self, count: int) -> None:
        while len(self.workers) < count:
            self.workers.append(
                self.cluster.add_node(num_cpus=self.node_cpus, node_ip_address="127.0.0.1")
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
        """Worker processes that outlived their raylet (seen after ``remove_node``): every
        process naming this run's own temp dir on its command line is ours."""
        import psutil

        marker = str(self.temp_dir / "ray")  # Ray's dir under RAY_TMPDIR, not PostgreSQL's
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if proc.pid != os.getpid() and any(
                    marker in part for part in proc.info["cmdline"] or []
                ):
                    proc.kill()


def _deployments() -> dict[str, Any]:
    details = serve_instance_details()
    return details.get("applications", {}).get(APP_NAME, {}).get("deployments", {})


def deployment_nodes() -> dict[str, list[str]]:
    """Node id of every RUNNING replica, per deployment (from the Serve controller)."""
    return {
        name: [r["node_id"] for r in info.get("replicas", []) if r.get("state") == "RUNNING"]
        for name, info in _deployments().items()
    }


def scaled_app(args: argparse.Namespace, *, replicas: int) -> Any:
    """The product graph with Enhancer/Synthesizer reserving ``args.replica_cpus`` each.

    ``replicas`` > 0: exactly that many replicas of each, holding ``args.per_replica`` jobs,
    and the Dispatcher's cap at ``replicas x per_replica``. 0: the pools' autoscaling and
    concurrency exactly as ``actors/pool_options.py`` holds them (only the CPU reservation
    changes, so that replicas need worker nodes)."""
    from actors.pool_options import DISPATCHER, ENHANCER, SYNTHESIZER, pool_options
    from benchmarks.apps import build_pipeline_app

    overrides: dict[str, dict[str, Any]] = {}
    for name in (ENHANCER, SYNTHESIZER):
        options: dict[str, Any] = {"ray_actor_options": {"num_cpus": args.replica_cpus}}
        if replicas:
            options.update(
                num_replicas=replicas,
                autoscaling_config=None,
                max_ongoing_requests=args.per_replica,
            )
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

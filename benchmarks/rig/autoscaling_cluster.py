"""A local Ray cluster whose worker nodes Ray's own autoscaler adds and removes.

Ray tests its autoscaler with the ``fake_multinode`` node provider: the head runs the
autoscaler (the ``monitor`` process, as on KubeRay), and "launching a node" starts one more
raylet on this machine. So a replica that cannot be placed becomes a pending resource demand,
the autoscaler launches a worker node of the type that fits, and a node idle for
``idle_timeout_minutes`` is terminated — the chain KubeRay runs (replica target -> pending
resources -> autoscaler -> new worker pod), without Kubernetes.

Why not ``ray.cluster_utils.AutoscalingCluster``: its ``start()`` and ``shutdown()`` run
``ray stop --force``, which kills every Ray instance on the machine (other users' too), and it
loads ``fake_multi_node/example.yaml``, which the Ray 2.60 wheel does not ship. Here the head
is one ``ray start --head`` on a free GCS port, loopback only, with its own ``--temp-dir`` under
the run's directory (so no other Ray instance finds it, or is found), the config written by
``cluster_config`` below; stopping kills exactly the processes that name this cluster's temp
dir or GCS address on their command line — the worker nodes the monitor started too — and
checks that none is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.rig.cluster import (
    connect_and_start_serve,
    kill_processes_naming,
    prepare_environment,
)
from core.ports import free_port
from local_stack.ray_auth import use_ray_token_if_available

HEAD_TYPE = "ray.head.default"  # the fake provider's fixed name for the head node type
WORKER_TYPE = "ray.worker.cpu"
MIB = 1024 * 1024


def cluster_config(
    *,
    head_cpus: float,
    worker_cpus: float,
    max_workers: int,
    gcs_address: str,
    idle_timeout_minutes: float,
    object_store_mib: int,
) -> dict[str, Any]:
    """The autoscaler's cluster config (what ``ray up`` would read): one head, one worker type
    of ``worker_cpus`` CPUs from 0 to ``max_workers`` nodes. Everything a real provider would
    run on a new machine (setup commands, file mounts, Docker) is empty: the fake provider
    starts the node's raylet in the monitor's own process."""
    return {
        "cluster_name": "fake_multinode",
        "max_workers": max_workers,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {
            "type": "fake_multinode",
            # Every node is at 127.0.0.1: the autoscaler tells them apart by node id.
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            # The default is <node ip>:6379, which another Ray instance may hold.
            "gcs_address": gcs_address,
            # Launch as many nodes as the autoscaler asks for at once (the default is one per
            # request whatever the count, which a real provider does not do).
            "launch_multiple": True,
        },
        "available_node_types": {
            HEAD_TYPE: {
                "resources": {"CPU": head_cpus, "object_store_memory": object_store_mib * MIB},
                "node_config": {},
                "max_workers": 0,
            },
            WORKER_TYPE: {
                "resources": {"CPU": worker_cpus, "object_store_memory": object_store_mib * MIB},
                "node_config": {},
                "min_workers": 0,
                "max_workers": max_workers,
            },
        },
        "head_node_type": HEAD_TYPE,
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


class AutoscalingLocalCluster:
    """Head node (``head_cpus``: Ingress, Dispatcher, ContextGatherer, Serve's controller and
    its one HTTP proxy) plus 0..``max_workers`` worker nodes of ``worker_cpus`` each, added and
    removed by Ray's autoscaler; this process is the driver."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        head_cpus: float,
        worker_cpus: float,
        max_workers: int,
        temp_dir: Path,
        idle_timeout_minutes: float = 0.25,
        object_store_mib: int = 100,
    ) -> None:
        import ray

        prepare_environment(env, temp_dir)
        self.ray_dir = temp_dir / "ray"  # Ray's own dir: PostgreSQL's files live beside it
        self.ray_dir.mkdir(parents=True, exist_ok=True)
        self.gcs_address = f"127.0.0.1:{free_port()}"
        self.worker_cpus = worker_cpus
        self.config = cluster_config(
            head_cpus=int(head_cpus),  # `ray start --num-cpus` takes whole CPUs
            worker_cpus=worker_cpus,
            max_workers=max_workers,
            gcs_address=self.gcs_address,
            idle_timeout_minutes=idle_timeout_minutes,
            object_store_mib=object_store_mib,
        )
        config_path = temp_dir / "autoscaling-config.json"
        config_path.write_text(json.dumps(self.config, indent=1))
        started = time.monotonic()
        try:
            self._start_head(config_path, head_cpus, object_store_mib)
            self.url = connect_and_start_serve(self.gcs_address)
        except BaseException:
            self.shutdown()
            raise
        self.start_s = time.monotonic() - started
        self.head_node_id = ray.get_runtime_context().get_node_id()
        self._ray = ray

    def _start_head(self, config_path: Path, head_cpus: float, object_store_mib: int) -> None:
        # `ray start` turns Ray's token authentication on when a token exists (~/.ray/auth_token)
        # but a driver joining by address does not: the same rule for both (and for the nodes
        # the monitor starts, which inherit the variable), or ray.init is refused.
        use_ray_token_if_available()
        env = {
            **os.environ,
            "RAY_FAKE_CLUSTER": "1",  # the fake provider refuses to load without it
            "AUTOSCALER_UPDATE_INTERVAL_S": "1",  # autoscaler loop every second (default 5)
        }
        command = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            f"--port={self.gcs_address.rsplit(':', 1)[1]}",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={int(head_cpus)}",  # `ray start` takes whole CPUs
            f"--object-store-memory={object_store_mib * MIB}",
            f"--temp-dir={self.ray_dir}",
            f"--autoscaling-config={config_path}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            # Fixed defaults (10001, 52365) another Ray instance on the machine may hold.
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
        ]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(
                f"ray start --head failed ({proc.returncode}): {proc.stderr[-2000:]}"
            )

    def worker_nodes(self) -> list[dict[str, Any]]:
        """Alive worker nodes as Ray's GCS reports them (``ray.nodes()``), head excluded."""
        return [
            n for n in self._ray.nodes() if n.get("Alive") and n.get("NodeID") != self.head_node_id
        ]

    def worker_node_ids(self) -> list[str]:
        return sorted(str(n["NodeID"]) for n in self.worker_nodes())

    def node_activity(self) -> dict[str, dict[str, Any]]:
        """Per alive worker node, what the GCS tells the autoscaler: status (RUNNING/IDLE),
        seconds idle, and why it is busy (``node_activity``) — why a node stays up."""
        from ray.autoscaler.v2.sdk import get_cluster_resource_state
        from ray.core.generated.autoscaler_pb2 import (  # type: ignore[attr-defined]
            NodeStatus,  # generated protobuf: its messages are built at import, not declared
        )

        # ray.init sets the worker's gcs_client; Ray's Worker class does not declare it
        worker = self._ray._private.worker.global_worker
        state = get_cluster_resource_state(worker.gcs_client)  # type: ignore[attr-defined]
        return {
            n.node_id.hex(): {
                "status": NodeStatus.Name(n.status),
                "idle_s": round(n.idle_duration_ms / 1000, 1),
                "activity": list(n.node_activity),
            }
            for n in state.node_states
            if n.node_id.hex() != self.head_node_id and n.status != NodeStatus.DEAD
        }

    def dead_worker_node_ids(self) -> list[str]:
        """Worker nodes the GCS reports dead (the autoscaler terminated them, or they died)."""
        return sorted(
            str(n["NodeID"])
            for n in self._ray.nodes()
            if not n.get("Alive") and n.get("NodeID") != self.head_node_id
        )

    def shutdown(self) -> list[int]:
        """Disconnect, then kill this cluster's processes (head, monitor, worker nodes, replica
        workers): every process naming its temp dir or GCS address. No ``serve.shutdown``: the
        cluster is thrown away, and draining replicas would only take time. Returns the pids
        still alive afterwards (none expected) and raises if any is."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        left = kill_processes_naming([str(self.ray_dir), self.gcs_address], grace_s=3.0)
        if left:
            raise RuntimeError(f"processes of the autoscaling cluster still alive: {left}")
        return left

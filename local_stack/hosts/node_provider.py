"""The Ray autoscaler's node provider for the multi-host harness, and the operator side that
turns its decisions into worker containers on spare hosts.

On KubeRay the autoscaler sidecar only edits the RayCluster (a worker group's ``replicas``,
``workersToDelete``); the operator creates and deletes the pods, and the kubelet keeps each
pod's container running. A worker pod is no child of the head pod: it outlives a head restart.
Here the same split: ``HostNodeProvider`` (loaded by the head's monitor, ``provider.type:
external``) only records which spare hosts should run a worker (``tags``, each with a ``uid``
as a pod has) in a state file; ``WorkerPods``, run by the harness outside every host, starts a
supervised ``Container`` (``ray start`` in a PID namespace of its own, restarted when it exits)
for every wanted host and stops the ones no longer wanted. The harness has wired the spare
hosts ahead (their namespace, address and packet filter rules, like a node pool's machines) and
written each one's launch spec (the same ``ray start`` command and environment as the harness'
own workers), so a new node joins through the same rules as every other: a port the policy
forgets fails the scale-up.

A worker the GCS has declared dead but whose container still runs is still listed by the
provider, so the autoscaler's liveness check (no raylet heartbeat for 30 s) terminates it and
the host becomes free for a replacement, as on KubeRay.

State (``state_path``): ``{"head": {...}, "slots": {name: {ip, namespace, argv, env, log}},
"tags": {name: {...}}}``; the monitor is the only writer of ``tags``, under a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ray.autoscaler.node_provider import NodeProvider
from ray.autoscaler.tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)

from local_stack.hosts.containers import Container
from local_stack.hosts.network import kill_namespace_processes

log = logging.getLogger(__name__)
HEAD = "head"
UID = "harness/pod-uid"  # a new one per launch: a host terminated and relaunched is a new pod


@contextlib.contextmanager
def locked_state(path: Path, write: bool = False) -> Iterator[dict[str, Any]]:
    """The state file, read (and with ``write`` rewritten atomically) under its lock."""
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text())
        yield state
        if write:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1))
            tmp.replace(path)


class HostNodeProvider(NodeProvider):
    def __init__(self, provider_config: dict[str, Any], cluster_name: str) -> None:
        super().__init__(provider_config, cluster_name)
        self.state_path = Path(provider_config["state_path"])
        self.head_type = provider_config.get("head_node_type", "head")

    def _state(self, write: bool = False) -> contextlib.AbstractContextManager[dict[str, Any]]:
        return locked_state(self.state_path, write)

    def _all_tags(self, state: dict[str, Any]) -> dict[str, dict[str, str]]:
        tags = {
            HEAD: {
                TAG_RAY_NODE_KIND: NODE_KIND_HEAD,
                TAG_RAY_USER_NODE_TYPE: self.head_type,
                TAG_RAY_NODE_NAME: HEAD,
                TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
            }
        }
        tags.update(state.get("tags", {}))  # a wanted worker is listed until terminated
        return tags

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        with self._state() as state:
            return [
                name
                for name, tags in self._all_tags(state).items()
                if all(tags.get(k) == v for k, v in tag_filters.items())
            ]

    def is_running(self, node_id: str) -> bool:
        with self._state() as state:
            return node_id in self._all_tags(state)

    def is_terminated(self, node_id: str) -> bool:
        return not self.is_running(node_id)

    def node_tags(self, node_id: str) -> dict[str, str]:
        with self._state() as state:
            return self._all_tags(state).get(node_id, {})

    def internal_ip(self, node_id: str) -> str:
        with self._state() as state:
            if node_id == HEAD:
                return str(state["head"]["ip"])
            return str(state["slots"][node_id]["ip"])

    def external_ip(self, node_id: str) -> str:
        return self.internal_ip(node_id)

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        with self._state(write=True) as state:
            if node_id in state.get("tags", {}):
                state["tags"][node_id].update(tags)

    def create_node(
        self, node_config: dict[str, Any], tags: dict[str, str], count: int
    ) -> dict[str, Any] | None:
        with self._state(write=True) as state:
            state.setdefault("tags", {})
            free = [name for name in state["slots"] if name not in state["tags"]]
            for name in free[:count]:
                state["tags"][name] = {
                    TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
                    TAG_RAY_NODE_NAME: name,
                    TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
                    **tags,
                    UID: secrets.token_hex(4),
                }
                log.info("asked for a worker on host %s", name)
            if len(free) < count:
                log.warning("asked for %d nodes, %d spare hosts left", count, len(free))
        return None

    def terminate_node(self, node_id: str) -> dict[str, Any] | None:
        if node_id == HEAD:
            return None
        with self._state(write=True) as state:
            state.get("tags", {}).pop(node_id, None)
        log.info("asked to terminate the worker on host %s", node_id)
        return None

    @staticmethod
    def bootstrap_config(cluster_config: dict[str, Any]) -> dict[str, Any]:
        return cluster_config


def write_state(path: Path, head_ip: str, slots: dict[str, dict[str, Any]]) -> None:
    """The state file the provider reads: the head's address and each spare host's launch
    spec (non-secret: secrets are files the spec's environment points at)."""
    path.write_text(json.dumps({"head": {"ip": head_ip}, "slots": slots, "tags": {}}, indent=1))
    os.chmod(path, 0o600)


class WorkerPods:
    """The operator's and kubelet's part: every ``period_s``, a supervised container for each
    host the provider wants (a new one when its ``uid`` changed), and no container on the
    others. ``pods`` is the current container per host."""

    def __init__(self, state_path: Path, period_s: float = 1.0) -> None:
        self.state_path = state_path
        self.period_s = period_s
        self.pods: dict[str, Container] = {}
        self._uids: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reconcile(self) -> None:
        with locked_state(self.state_path) as state:
            wanted = {name: tags.get(UID, "") for name, tags in state.get("tags", {}).items()}
            slots = state["slots"]
        for name in list(self.pods):
            if wanted.get(name) != self._uids.get(name):
                self._delete(name, slots[name]["namespace"])
        for name, uid in wanted.items():
            if name not in self.pods:
                slot = slots[name]
                pod = Container(
                    f"ray-{name}",
                    slot["namespace"],
                    list(slot["argv"]),
                    dict(slot["env"]),
                    Path(slot["log"]),
                    own_pids=True,
                )
                self.pods[name], self._uids[name] = pod.start(), uid
                log.info("started a worker container on host %s", name)

    def _delete(self, name: str, namespace: str) -> None:
        self.pods.pop(name).stop(grace_s=2.0)
        self._uids.pop(name, None)
        kill_namespace_processes(namespace)  # whatever the pod left (none: its own PIDs)
        log.info("deleted the worker container on host %s", name)

    def start(self) -> WorkerPods:
        def loop() -> None:
            while not self._stop.wait(self.period_s):
                try:
                    self.reconcile()
                except Exception:  # noqa: BLE001 - keep reconciling, as the operator does
                    log.exception("reconciling the worker pods failed")

        self._thread = threading.Thread(target=loop, name="worker-pods", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        for pod in list(self.pods.values()):
            pod.stop(grace_s=3)

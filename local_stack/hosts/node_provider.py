"""The Ray autoscaler's node provider for the multi-host harness: "launching a node" starts a
worker's Ray container on a spare host, "terminating" it kills every process of that host.

On KubeRay the autoscaler sidecar raises the worker group's ``replicas`` and the operator
creates a pod; here the harness has wired spare hosts ahead (their namespace, address and
packet filter rules, like a node pool's machines) and written each one's launch spec (the
same ``ray start`` command and environment as the harness' own workers) into a state file.
The head's monitor process loads this class (``provider.type: external``), so the new node
joins through the same rules as every other: a port the policy forgets fails the scale-up.

State (``state_path``): ``{"head": {...}, "slots": {name: {ip, namespace, argv, env, log}},
"tags": {name: {...}}}``; the monitor is the only writer of ``tags``, under a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import subprocess
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

from local_stack.hosts.netns import pod_argv
from local_stack.hosts.network import kill_namespace_processes, namespace_pids

log = logging.getLogger(__name__)
HEAD = "head"


class HostNodeProvider(NodeProvider):
    def __init__(self, provider_config: dict[str, Any], cluster_name: str) -> None:
        super().__init__(provider_config, cluster_name)
        self.state_path = Path(provider_config["state_path"])
        self.head_type = provider_config.get("head_node_type", "head")

    @contextlib.contextmanager
    def _state(self, write: bool = False) -> Iterator[dict[str, Any]]:
        with open(self.state_path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(self.state_path.read_text())
            yield state
            if write:
                tmp = self.state_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(state, indent=1))
                tmp.replace(self.state_path)

    def _all_tags(self, state: dict[str, Any]) -> dict[str, dict[str, str]]:
        tags = {
            HEAD: {
                TAG_RAY_NODE_KIND: NODE_KIND_HEAD,
                TAG_RAY_USER_NODE_TYPE: self.head_type,
                TAG_RAY_NODE_NAME: HEAD,
                TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
            }
        }
        for name, node_tags in state.get("tags", {}).items():
            if namespace_pids(state["slots"][name]["namespace"]):
                tags[name] = node_tags
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
            free = [
                name
                for name, slot in state["slots"].items()
                if name not in state["tags"] and not namespace_pids(slot["namespace"])
            ]
            for name in free[:count]:
                slot = state["slots"][name]
                Path(slot["log"]).parent.mkdir(parents=True, exist_ok=True)
                with open(slot["log"], "ab") as out:
                    subprocess.Popen(
                        pod_argv(slot["namespace"], slot["argv"]),
                        env=slot["env"],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                state["tags"][name] = {
                    TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
                    TAG_RAY_NODE_NAME: name,
                    TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE,
                    **tags,
                }
                log.info("launched a worker on host %s (%s)", name, slot["ip"])
            if len(free) < count:
                log.warning("asked for %d nodes, %d spare hosts left", count, len(free))
        return None

    def terminate_node(self, node_id: str) -> dict[str, Any] | None:
        if node_id == HEAD:
            return None
        with self._state(write=True) as state:
            slot = state["slots"][node_id]
            state.get("tags", {}).pop(node_id, None)
        kill_namespace_processes(slot["namespace"], grace_s=2.0)
        log.info("terminated the worker on host %s", node_id)
        return None

    @staticmethod
    def bootstrap_config(cluster_config: dict[str, Any]) -> dict[str, Any]:
        return cluster_config


def write_state(path: Path, head_ip: str, slots: dict[str, dict[str, Any]]) -> None:
    """The state file the provider reads: the head's address and each spare host's launch
    spec (non-secret: secrets are files the spec's environment points at)."""
    path.write_text(json.dumps({"head": {"ip": head_ip}, "slots": slots, "tags": {}}, indent=1))
    os.chmod(path, 0o600)

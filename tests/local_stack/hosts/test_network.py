"""The multi-host harness without Ray: hosts as network namespaces on a private bridge, the
rendered NetworkPolicies as nftables rules on each, stale runs swept. Plain TCP listeners on
the hosts stand in for Ray's ports, so what the rules allow and drop is checked in seconds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
from ray.autoscaler.tags import TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE

from kuberay.render import manifest_documents
from kuberay.validation.network_rules import Endpoint
from kuberay.values_files import values_from_dict
from local_stack.hosts import firewall
from local_stack.hosts.netns import NamespaceLoop, in_namespace
from local_stack.hosts.network import (
    STATE_DIR,
    Network,
    namespace_pids,
    namespaces,
    sweep_stale,
)
from local_stack.hosts.node_provider import HostNodeProvider, WorkerPods, write_state
from local_stack.hosts.services import probe_from
from local_stack.hosts.traffic import wait_until

LISTEN = {"head": [6379, 8265, 8077, 44217], "w1": [8000, 8077, 12345, 8080], "db": [5432]}


def _listen(host_ip: str, port: int, stop: threading.Event) -> None:
    server = socket.create_server((host_ip, port))
    server.settimeout(0.2)

    def serve() -> None:
        with server:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                    conn.close()
                except TimeoutError:
                    continue

    threading.Thread(target=serve, daemon=True).start()


@pytest.fixture(scope="module")
def net() -> Iterator[Network]:
    network = Network().create()
    stop = threading.Event()
    try:
        for name in ("head", "w1", "db", "ingress", "operator", "stranger"):
            network.add_host(name)
        for name, ports in LISTEN.items():
            host = network.hosts[name]
            for port in ports:
                in_namespace(host.namespace, _listen, host.ip, port, stop)
        yield network
    finally:
        stop.set()
        network.destroy()


def _endpoints(net: Network) -> dict[str, Endpoint]:
    documents = manifest_documents(_values(net))
    (service,) = documents["rayservice.yaml"]
    cluster = service["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]["template"]["metadata"]["labels"]
    worker = cluster["workerGroupSpecs"][0]["template"]["metadata"]["labels"]
    roles = {
        "head": ("ai-agents", {**head, "ray.io/node-type": "head"}),
        "w1": ("ai-agents", {**worker, "ray.io/node-type": "worker"}),
        "db": ("databases", {"app": "postgres"}),
        "ingress": ("ingress-nginx", {"app": "ingress-nginx"}),
        "operator": ("kuberay-system", {"app.kubernetes.io/name": "kuberay-operator"}),
        "stranger": ("ai-agents", {"app": "debug-pod"}),
    }
    return {
        name: Endpoint(name, ns, labels, net.hosts[name].ip) for name, (ns, labels) in roles.items()
    }


def _values(net: Network):
    return values_from_dict(
        {"networkPolicy": {"egress": {"postgres": [{"cidr": f"{net.hosts['db'].ip}/32",
                                                     "ports": [5432]}]}}}
    )  # fmt: skip


def _policies(net: Network) -> list[dict]:
    return list(manifest_documents(_values(net))["networkpolicy.yaml"])


def _apply(net: Network, policies: list[dict]) -> None:
    endpoints = _endpoints(net)
    for name, endpoint in endpoints.items():
        rules = firewall.host_rules(endpoint, policies, endpoints.values())
        firewall.apply(net.hosts[name].namespace, rules)


def reach(net: Network, source: str, target: str, port: int) -> bool:
    return probe_from(net.hosts[source].namespace, net.hosts[target].ip, port, timeout_s=1.0)


def test_hosts_talk_over_their_own_bridge_and_nothing_else(net: Network) -> None:
    for name in ("head", "w1"):
        assert reach(net, "ingress", name, LISTEN[name][0])  # no rules yet: open
    # the machine's own namespace has no interface on the run's subnet
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert "10.213.27." not in routes
    # two namespaces per host are not shared: w1's listener is not on the head
    assert not reach(net, "ingress", "head", 8000)


def test_the_rendered_policy_is_enforced_on_every_host(net: Network) -> None:
    _apply(net, _policies(net))
    allowed = [
        ("ingress", "w1", 8000),  # webhooks: ingress controller -> Serve
        ("w1", "head", 6379),  # a worker's raylet -> the GCS
        ("head", "w1", 8077),  # the head -> a worker's raylet
        ("w1", "head", 8077),
        ("head", "w1", 12345),  # a worker process port (actor calls)
        ("operator", "head", 8265),  # KubeRay -> the dashboard
        ("w1", "db", 5432),  # egress to PostgreSQL
    ]
    dropped = [
        ("ingress", "head", 8265),  # the dashboard is the operator's only
        ("ingress", "w1", 8077),  # Ray's ports are the cluster's only
        ("operator", "head", 6379),
        ("operator", "w1", 8000),
        ("stranger", "head", 6379),  # a pod of the namespace that is not a Ray pod
        ("stranger", "w1", 8000),
        ("head", "w1", 8080),  # metrics: only from the monitoring namespace
    ]
    for source, target, port in allowed:
        assert reach(net, source, target, port), f"{source} -> {target}:{port} refused"
    before = firewall.dropped(net.hosts["w1"].namespace)
    for source, target, port in dropped:
        assert not reach(net, source, target, port), f"{source} -> {target}:{port} allowed"
    after = firewall.dropped(net.hosts["w1"].namespace)
    assert after["input"] > before["input"]  # dropped silently by the rule, not refused
    for name in ("ingress", "operator", "db"):  # no policy selects them: no rules at all
        assert firewall.dropped(net.hosts[name].namespace) == {}


def test_a_port_the_policy_forgets_is_dropped(net: Network) -> None:
    policies = _policies(net)
    for policy in policies:
        if policy["metadata"]["name"] == "ai-agents-ray-cluster":
            for rule in policy["spec"]["ingress"] + policy["spec"]["egress"]:
                rule["ports"] = [p for p in rule["ports"] if p["port"] != 8077]
    _apply(net, policies)
    try:
        assert not reach(net, "w1", "head", 8077)
        assert reach(net, "w1", "head", 6379)  # the rest still flows
    finally:
        _apply(net, _policies(net))
    assert reach(net, "w1", "head", 8077)


def test_a_namespace_loop_talks_from_its_host(net: Network) -> None:
    import asyncio

    async def connect() -> bool:
        _, writer = await asyncio.open_connection(net.hosts["w1"].ip, 8000)
        writer.close()
        return True

    loop = NamespaceLoop(net.hosts["ingress"].namespace)
    try:
        assert loop.run(connect(), timeout_s=5)
    finally:
        loop.stop()


def test_the_autoscalers_workers_are_pods_the_operator_runs(net: Network, tmp_path) -> None:
    """The node provider (in the head's monitor) only records which spare hosts should run a
    worker; ``WorkerPods`` (outside every host, as KubeRay's operator and the kubelet are)
    starts and stops their containers. So a worker does not die with the head, a new monitor
    (a restarted head) still lists it, and a terminated host is free for a new pod."""
    spare = net.add_host("spare")
    state = tmp_path / "autoscaler-state.json"
    slot = {"ip": spare.ip, "namespace": spare.namespace, "argv": ["sleep", "300"],
            "env": {"PATH": "/usr/bin:/bin"}, "log": str(tmp_path / "spare.log")}  # fmt: skip
    write_state(state, net.hosts["head"].ip, {"spare": slot})
    config = {"state_path": str(state), "head_node_type": "head"}
    pods = WorkerPods(state)

    def in_spare(pid: int | None) -> bool:  # ``ip netns exec`` enters it a moment after start
        return bool(wait_until(lambda: pid in namespace_pids(spare.namespace), 10, 0.1))

    try:
        provider = HostNodeProvider(config, "c")
        provider.create_node({}, {TAG_RAY_USER_NODE_TYPE: "pools"}, 2)  # one spare host only
        assert provider.non_terminated_nodes({TAG_RAY_NODE_KIND: "worker"}) == ["spare"]
        assert not namespace_pids(spare.namespace)  # the provider starts nothing itself
        pods.reconcile()
        first = pods.pods["spare"]
        assert first.running() and in_spare(first.pid)

        restarted = HostNodeProvider(config, "c")  # a new monitor: the head restarted
        assert restarted.non_terminated_nodes({}) == ["head", "spare"]
        restarted.create_node({}, {}, 1)  # no free host while the worker is wanted
        pods.reconcile()
        assert pods.pods["spare"] is first and first.running()  # the same pod, untouched

        restarted.terminate_node("spare")  # e.g. no raylet heartbeat for 30 s
        assert restarted.non_terminated_nodes({}) == ["head"]
        restarted.create_node({}, {}, 1)  # the host is free again: a new pod
        pods.reconcile()
        second = pods.pods["spare"]
        assert not first.running() and second.running() and in_spare(second.pid)
        assert first.pid not in namespace_pids(spare.namespace)
        restarted.terminate_node("spare")
        pods.reconcile()
        assert not namespace_pids(spare.namespace) and not pods.pods
    finally:
        pods.stop()


def test_stale_runs_are_swept_and_live_ones_kept(net: Network) -> None:
    stale = Network()
    stale.create()
    stale.add_host("h1")
    record = STATE_DIR / f"{stale.run}.json"
    record.write_text(json.dumps({"pid": 2**22 + 7, "started": 1}))  # an owner that is gone
    leftover = subprocess.Popen(
        ["ip", "netns", "exec", stale.hosts["h1"].namespace, "sleep", "300"]
    )
    try:
        removed = sweep_stale()
        assert {stale.switch, stale.hosts["h1"].namespace} <= set(removed)
        assert leftover.wait(10) != 0  # its process was killed
        assert not record.exists()
        assert net.switch in namespaces()  # this module's live run is untouched
    finally:
        if leftover.poll() is None:
            leftover.kill()
        stale.destroy()


def test_tear_down_leaves_nothing() -> None:
    network = Network().create()
    host = network.add_host("solo")
    proc = subprocess.Popen(["ip", "netns", "exec", host.namespace, "sleep", "300"])
    network.destroy()
    assert proc.wait(10) != 0
    assert host.namespace not in namespaces() and network.switch not in namespaces()
    assert not (STATE_DIR / f"{network.run}.json").exists()
    assert os.geteuid() == 0  # the harness needs root, as CI has

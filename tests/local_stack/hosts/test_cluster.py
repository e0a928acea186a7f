"""The rendered KubeRay deployment on a cluster of real hosts (network namespaces, each node
its own address), the rendered NetworkPolicies enforced as packet filter rules on every host:
webhook -> note across hosts, the autoscaler adding a node, a `reenhance` Ray Job, Ray's token
required from other hosts, the head's GCS killed mid-stream with GCS fault tolerance (a small
version of benchmarks/cluster), and a port the policy forgets breaking Ray between hosts.

One cluster for the module (about a minute to start): head (num-cpus 0), one worker host, one
spare host the autoscaler starts a worker on (the Enhancer reserves 2 CPUs, more than the
first worker has left), PostgreSQL, Redis, the SDP and LLM simulators, the ingress
controller's and the KubeRay operator's hosts. The tests run in order on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from local_stack.hosts import firewall
from local_stack.hosts.cluster import HostCluster
from local_stack.hosts.netns import entered, exec_argv
from local_stack.hosts.ray_nodes import ClusterSpec
from local_stack.hosts.services import probe_from
from local_stack.hosts.traffic import (
    Sender,
    accepted_by_target,
    account,
    note_gap_s,
    refused_seconds,
    unfinished_jobs,
    wait_until,
)
from tests import lanes

# its own Ray, database and simulators on its own hosts: a lane of its own (tests/lanes.py)
pytestmark = [*lanes.hosts, pytest.mark.timeout(900)]

SPEC = ClusterSpec(
    workers=1,
    spare=1,
    gcs_fault_tolerance=True,
    llm_latency_s=0.5,
    values={
        "serve": {
            "deployments": {
                "Enhancer": {
                    "ray_actor_options": {"num_cpus": 2},
                    "autoscaling_config": {"min_replicas": 1, "max_replicas": 1},
                }
            }
        }
    },
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[HostCluster]:
    with HostCluster(SPEC, label="test") as started:
        yield started


@pytest.fixture(scope="module")
def sender(cluster: HostCluster) -> Iterator[Sender]:
    assert cluster.sims is not None
    webhooks = Sender(
        cluster.serve_urls([*cluster.worker_names, *cluster.spare_names]), cluster.sims
    )
    loop = cluster.loop("ingress")
    loop.run(webhooks.start())
    yield webhooks
    loop.run(webhooks.close())


def _notes(cluster: HostCluster) -> list:
    assert cluster.sims is not None
    return [n for t in cluster.tenants for n in cluster.sims.sdp.recorded_notes(t.id)]


def _noted(cluster: HostCluster, tickets: list[tuple[str, str]], timeout_s: float) -> bool:
    def done() -> bool:
        have = {(n.portal, str(n.request_id)) for n in _notes(cluster)}
        return all(t in have for t in tickets)

    try:
        return bool(wait_until(done, timeout_s))
    except TimeoutError:
        return False


def test_every_node_has_its_own_address_and_the_autoscaler_added_one(cluster: HostCluster):
    nodes = {n["raylet"]["nodeManagerAddress"]: n["raylet"]["state"] for n in cluster.ray_nodes()}
    expected = {cluster.host(h).ip for h in ("head", "w1", "s1")}
    assert {ip for ip, state in nodes.items() if state == "ALIVE"} == expected
    state = json.loads((cluster.run_dir / "autoscaler-state.json").read_text())
    assert set(state["tags"]) == {"s1"}, "s1 was started by the autoscaler's node provider"
    assert cluster.operator is not None
    (app,) = (cluster.operator.applications() or {}).values()
    enhancer = app["deployments"]["Enhancer"]["replicas"]
    on_spare = [r for r in enhancer if r["node_ip"] == cluster.host("s1").ip]
    assert on_spare and on_spare[0]["state"] == "RUNNING"


def test_the_rendered_policy_is_enforced_between_the_hosts(cluster: HostCluster):
    def reach(source: str, target: str, port: int) -> bool:
        return probe_from(cluster.host(source).namespace, cluster.host(target).ip, port, 2.0)

    assert reach("ingress", "w1", 8000) and reach("operator", "head", 8265)
    assert reach("w1", "head", 6379) and reach("s1", "w1", 8077)
    for source, target, port in [
        ("ingress", "head", 8265),  # the dashboard (Jobs API): the KubeRay operator's only
        ("ingress", "head", 6379),  # the GCS: the cluster's pods only
        ("operator", "head", 6379),
        ("operator", "w1", 8000),
        ("ingress", "w1", 52365),  # the dashboard agent
        ("llm", "w1", 8000),  # a service outside the cluster
    ]:
        assert not reach(source, target, port), f"{source} -> {target}:{port} got through"
    assert firewall.dropped(cluster.host("head").namespace)["input"] > 0


def test_rays_token_is_required_from_other_hosts(cluster: HostCluster):
    def get(path: str, token: str | None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with entered(cluster.host("operator").namespace):
            return httpx.get(
                f"{cluster.dashboard_url}{path}", headers=headers, timeout=10
            ).status_code

    for path in ("/api/jobs/", "/api/serve/applications/", "/nodes?view=summary"):
        assert get(path, None) == 401, path  # no token: unauthenticated
        assert get(path, "not-the-token") == 403, path  # a wrong one: forbidden
        assert get(path, cluster.token) == 200, path

    def ray_init(mode: str) -> subprocess.CompletedProcess[str]:
        assert cluster.layout is not None
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "HOME": str(cluster.run_dir / "home" / "w1"),
            "RAY_AUTH_MODE": mode,
            "RAY_AUTH_TOKEN_PATH": str(cluster.layout.token_file),
        }
        code = (
            f"import ray; ray.init(address='{cluster.host('head').ip}:6379', "
            "log_to_driver=False); print('nodes', len(ray.nodes()))"
        )
        return subprocess.run(
            exec_argv(cluster.host("w1").namespace, [sys.executable, "-c", code]),
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    refused = ray_init("disabled")
    assert refused.returncode != 0 and "nodes" not in refused.stdout
    joined = ray_init("token")
    assert joined.returncode == 0 and "nodes 3" in joined.stdout, joined.stderr[-2000:]


def test_webhooks_reach_notes_across_hosts(cluster: HostCluster, sender: Sender):
    loop = cluster.loop("ingress")
    hooks = [loop.run(sender.send(cluster.tenants[i % 2]), 120) for i in range(6)]
    assert all(h.acknowledged for h in hooks)
    assert _noted(cluster, [(h.tenant, h.ticket) for h in hooks], 120)
    assert account(sender, _notes(cluster))["duplicate_notes"] == 0


def test_a_reenhance_job_runs_through_the_token(cluster: HostCluster):
    tenant = cluster.tenants[0].id
    args = ["reenhance", "--tenant", tenant, "--status", "any", "--limit", "2"]
    args += ["--address", cluster.dashboard_url, "--json"]
    done = cluster.run_cli(args)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["job_status"] == "SUCCEEDED" and report["progress"]["completed"] == 2
    refused = cluster.run_cli(args, token=False)
    assert refused.returncode == 1 and "Authentication" in refused.stderr, refused.stderr


PING = """
import sys, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address=sys.argv[1], log_to_driver=False)
alive = [n for n in ray.nodes() if n["Alive"]]
node = next(n["NodeID"] for n in alive if n["NodeManagerAddress"] == sys.argv[2])

@ray.remote(num_cpus=0)
class Ping:
    def ping(self):
        return "pong"

actor = Ping.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
print(ray.get(actor.ping.remote(), timeout=float(sys.argv[3])))
"""


def test_a_port_the_policy_forgets_breaks_ray(cluster: HostCluster):
    """A driver on w1 calls a new actor on s1: a new connection from w1 to a worker process
    port of s1. With the rendered policy it answers; with the worker port range taken out of
    the policy (and the rules applied again) the call times out; the full policy restored, it
    answers again."""
    assert cluster.rendered is not None and cluster.layout is not None

    def call() -> subprocess.CompletedProcess[str]:
        assert cluster.layout is not None
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "HOME": str(cluster.run_dir / "home" / "w1"),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(cluster.layout.token_file),
        }
        args = [f"{cluster.host('head').ip}:6379", cluster.host("s1").ip, "30"]
        return subprocess.run(
            exec_argv(cluster.host("w1").namespace, [sys.executable, "-c", PING, *args]),
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip

    ok = call()
    assert ok.returncode == 0 and "pong" in ok.stdout, ok.stderr[-2000:]
    forgetful = json.loads(json.dumps(cluster.rendered.policies))
    for policy in forgetful:
        if policy["metadata"]["name"].endswith("-ray-cluster"):
            for rule in policy["spec"]["ingress"] + policy["spec"]["egress"]:
                rule["ports"] = [p for p in rule["ports"] if "endPort" not in p]

    cluster.apply_policy(forgetful)
    try:
        broken = call()
        assert broken.returncode != 0 and "pong" not in broken.stdout
        assert "GetTimeoutError" in broken.stderr, broken.stderr[-2000:]
    finally:
        cluster.apply_policy(cluster.rendered.policies)
    again = call()
    assert again.returncode == 0 and "pong" in again.stdout, again.stderr[-2000:]


def test_the_gcs_killed_mid_stream_loses_nothing(cluster: HostCluster, sender: Sender):
    """(a) of benchmarks/cluster, small: the head's GCS is killed while webhooks arrive at
    2/s; the head's container restarts and recovers the cluster from Redis."""
    assert cluster.sims is not None and cluster.db is not None
    loop = cluster.loop("ingress")
    first = len(sender.webhooks)
    starts = cluster.containers["head"].starts
    stream = loop.submit(sender.steady(cluster.tenants, rate_per_s=2.0, duration_s=60))
    time.sleep(10)
    killed = cluster.kill_gcs()
    stream.result(timeout=400)
    ended = time.time()
    assert cluster.containers["head"].starts > starts, "the head container was restarted"
    hooks = sender.webhooks[first:]
    assert all(h.acknowledged for h in hooks), "every webhook is acknowledged in the end"
    tickets = [(h.tenant, h.ticket) for h in hooks]
    noted = _noted(cluster, tickets, 240)
    if not noted:  # what the cluster looked like when the notes stopped
        assert cluster.operator is not None
        have = {(n.portal, str(n.request_id)) for n in _notes(cluster)}
        print("not noted:", sum(1 for t in tickets if t not in have), "of", len(tickets))
        apps = cluster.operator.applications() or {}
        print("apps:", {k: v.get("status") for k, v in apps.items()})
        try:
            print("nodes:", [(n["raylet"]["nodeManagerAddress"], n["raylet"]["state"])
                             for n in cluster.ray_nodes()])  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a diagnostic, the assert below decides
            print("nodes: the dashboard did not answer:", repr(exc))
        print("jobs:", loop.run(unfinished_jobs(
            cluster.db.database.owner_url, [str(h.enhancement_id) for h in hooks])))  # fmt: skip
        print("restarts:", {n: c.starts for n, c in cluster.containers.items()})
    assert noted, "every acknowledged webhook gets its note"
    # this test's tickets only: the reenhance test before it wrote a second note on two others
    per_ticket = Counter((n.portal, str(n.request_id)) for n in _notes(cluster))
    lost = [t for t in tickets if per_ticket[t] == 0]
    duplicates = {t: per_ticket[t] for t in tickets if per_ticket[t] > 1}
    assert not lost and not duplicates, (lost, duplicates)
    jobs = loop.run(
        unfinished_jobs(cluster.db.database.owner_url, [str(h.enhancement_id) for h in hooks])
    )
    assert jobs == {"missing": 0, "not_finished": 0, "failed": 0}
    print(
        "gcs kill:",
        {
            "refused_s": refused_seconds(sender.attempts, killed, ended),
            "accepted_by_worker_first_20s": accepted_by_target(
                sender.attempts, killed, killed + 20
            ),
            "note_gap_s": note_gap_s(_notes(cluster), killed, ended),
            "head_restarts": cluster.containers["head"].starts - starts,
        },
    )

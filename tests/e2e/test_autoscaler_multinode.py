"""Ray's own autoscaler adds a worker node for a backlog and removes it once the backlog is done.

Runs ``python -m benchmarks.scaleout --modes ray-autoscaler`` as a subprocess, as an operator
would: its own embedded PostgreSQL, simulators, and a Ray cluster started with Ray's
``fake_multinode`` node provider (head on a free GCS port, loopback only, files in the run's
own directory; worker nodes launched and terminated by the autoscaler in the head's monitor).
The pools autoscale on the durable backlog as ``actors/deployment_options.py`` holds them, with
``max_replicas`` 2 and, to fit CI, a 10 s downscale delay (production: 120 s) and a 6 s idle
timeout for nodes. Every fact asserted about nodes comes from Ray (``ray.nodes()`` in the GCS)
and about replicas from the Serve controller, sampled every second by the benchmark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_multinode import run_scaleout

pytestmark = pytest.mark.ray

BACKLOG = 500


def test_autoscaler_adds_a_node_for_the_backlog_and_removes_it_when_idle(tmp_path: Path) -> None:
    result = run_scaleout(
        tmp_path,
        "ray-autoscaler",
        "--replicas",
        "2",
        "--backlog",
        str(BACKLOG),
        "--llm-latency",
        "8",
        "--jitter",
        "0",
        "--downscale-delay",
        "10",
        "--idle-timeout-min",
        "0.1",
        "--timeout",
        "120",
        "--scale-in-wait",
        "60",
    )
    head, timeline = result["head_node"], result["timeline"]
    at_rest = set(result["worker_nodes_at_rest"])

    # At rest (min_workers 0): the autoscaler launched a node for the pools' min replicas, which
    # reserve more CPU than the head has; the head holds the Ingress and Dispatcher.
    placement = result["placement_at_rest"]
    assert head in placement["Ingress"] and head in placement["Dispatcher"]
    assert at_rest and head not in at_rest
    for pool in ("Enhancer", "Synthesizer"):
        assert placement[pool] and set(placement[pool]) <= at_rest, placement

    # The backlog raised the replica targets; the replicas that did not fit made the autoscaler
    # launch another worker node, and a replica started on it.
    added = {n for s in timeline for n in s["nodes"]} - at_rest
    assert added, timeline
    assert result["peak_worker_nodes"] > len(at_rest)
    assert result["peak_enhancers"] == 2
    assert any(set(s["replica_nodes"]) & added for s in timeline), timeline
    assert 0 < result["s_spike_to_first_node"] <= result["s_spike_to_peak_nodes"]

    # Backlog drained, pools back at min_replicas, and the idle node(s) terminated: dead in the
    # GCS, and every worker node still alive holds a replica.
    assert result["drained_s"] is not None
    assert result["s_drained_to_replicas_at_min"] is not None
    assert result["s_drained_to_nodes_removed"] is not None, timeline[-5:]
    removed = set(result["worker_nodes_removed"])
    assert removed and removed <= set(result["worker_nodes_dead"])
    last = timeline[-1]
    assert last["idle_worker_nodes"] == 0 and last["worker_nodes"] < result["peak_worker_nodes"]
    assert last["enhancers"] == 1 and last["synthesizers"] == 1

    # Every job completed, each with exactly one note in the SDP simulator.
    assert result["backlog"] == BACKLOG
    assert result["statuses"] == {"completed": BACKLOG}
    assert result["lost"] == 0 and result["missing_notes"] == 0
    assert result["duplicate_notes"] == 0

"""The pipeline on a multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``):
per-replica CPU reservations keep the Enhancer and Synthesizer replicas off the head node, so
they wait for worker nodes added after the deploy, and a worker node killed mid-run loses no
job and writes no note twice.

Runs ``python -m benchmarks.scaleout --modes node-loss`` as a subprocess (its own embedded
PostgreSQL, simulators, and Ray cluster whose nodes listen on loopback only, with its files in
the run's own directory), as an operator would run the benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]


def run_scaleout(tmp_path: Path, mode: str, *args: str) -> dict:
    """``python -m benchmarks.scaleout --modes MODE ARGS`` as an operator runs it; its result."""
    out = tmp_path / f"{mode}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scaleout",
            "--modes",
            mode,
            *args,
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())[mode]


def test_replicas_spread_over_nodes_and_a_lost_node_loses_nothing(tmp_path: Path) -> None:
    result = run_scaleout(
        tmp_path,
        "node-loss",
        "--backlog",
        "160",
        "--llm-latency",
        "3",
        "--jitter",
        "0",
        "--kill-at",
        "0.25",
        "--timeout",
        "150",
    )
    head, before = result["head_node"], result["placement_before"]
    # The 1-CPU reservation per replica keeps Enhancer/Synthesizer off the head node (1 CPU,
    # holding the Ingress, Dispatcher and ContextGatherer): their replicas waited for the
    # worker nodes added after the deploy, and fill both 2-CPU worker nodes.
    assert head in before["Ingress"] and head in before["Dispatcher"]
    for pool in ("Enhancer", "Synthesizer"):
        assert len(before[pool]) == 2, before
        assert head not in before[pool], before
    assert len(set(before["Enhancer"]) | set(before["Synthesizer"])) == 2, before
    # The node that died held an Enhancer, mid-run: jobs were in flight there.
    removed = result["removed"]
    assert removed["node_id"] in before["Enhancer"]
    assert 0 < removed["completed_before"] < result["accepted"]
    assert removed["replica_pids_killed"]
    # Nothing lost, nothing written twice: every accepted job completed with exactly one note.
    assert result["accepted"] == 160
    assert result["statuses"] == {"completed": 160}
    assert result["lost"] == 0 and result["missing_notes"] == 0
    assert result["duplicate_notes"] == 0
    assert result["retried"] > 0  # the jobs of the dead node really were run again

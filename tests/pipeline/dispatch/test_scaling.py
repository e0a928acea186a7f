"""The scaling maths without Ray: replicas wanted for a backlog, the Dispatcher's in-flight cap,
and the backlog report that travels between them."""

from __future__ import annotations

import math
import time

import pytest

from pipeline.dispatch.scaling import (
    BacklogReport,
    ClusterCapacity,
    desired_replicas,
    inflight_cap,
    placeable_replicas,
)


def test_desired_replicas_counts_backlog_and_inflight_at_the_per_replica_target() -> None:
    assert desired_replicas(0, 0, 192) == 0
    assert desired_replicas(0, 96, 192) == 0.5  # in flight alone: Serve's default rule
    assert desired_replicas(1200, 192, 192) == pytest.approx(1392 / 192)
    # grows with the backlog, shrinks back when it drains
    wanted = [math.ceil(desired_replicas(b, 192, 192)) for b in (0, 200, 600, 1200, 0)]
    assert wanted == [1, 3, 5, 8, 1]


def test_desired_replicas_ignores_negative_inputs_and_refuses_a_zero_target() -> None:
    assert desired_replicas(-5, -1, 10) == 0
    with pytest.raises(ValueError):
        desired_replicas(10, 0, 0)


def test_inflight_cap_is_running_replicas_times_target_within_the_bound() -> None:
    assert inflight_cap(None, 192, 256) == 256  # not known: the setting, as before
    assert inflight_cap(0, 192, 256) == 192  # scaling from zero: one replica's worth
    assert inflight_cap(1, 192, 256) == 192
    assert inflight_cap(4, 192, 1024) == 768
    assert inflight_cap(16, 192, 1024) == 1024
    assert inflight_cap(3, 192, 64) == 64  # the bound also caps a single replica


def test_backlog_report_round_trips_and_bad_input_reads_as_none() -> None:
    report = BacklogReport(claimable=7, running=3, per_tenant={"a": 5, "b": 2})
    again = BacklogReport.from_json(report.to_json())
    assert again == report and again.is_fresh()
    assert not BacklogReport(1, 0, {}, measured_at=time.time() - 3600).is_fresh()
    for bad in (None, b"", b"not json", b"[]", b'{"claimable": "x"}', b'{"running": 1}'):
        assert BacklogReport.from_json(bad) is None


def test_placeable_replicas_stops_where_the_free_cpus_end_on_one_node() -> None:
    # a 2-CPU node, 0.65 CPU free, 0.5 CPU per replica: one more replica starts, not three
    node = ClusterCapacity(free_cpus=0.65, total_cpus=2.0)
    assert placeable_replicas(4.0, 1, 0.5, node) == 2.0
    assert placeable_replicas(1.5, 1, 0.5, node) == 1.5  # within room: unchanged
    full = ClusterCapacity(free_cpus=0.0, total_cpus=2.0)
    assert placeable_replicas(4.0, 1, 0.5, full) == 1.0  # a full node: hold, nothing pending
    # 0.1 + 0.2 CPUs free is room for a 0.3-CPU replica despite float noise
    assert placeable_replicas(3.0, 1, 0.3, ClusterCapacity(0.1 + 0.2, 2.0)) == 2.0


def test_placeable_replicas_never_cuts_a_scale_down_and_trusts_serve_without_a_reading() -> None:
    full = ClusterCapacity(free_cpus=0.0, total_cpus=2.0)
    assert placeable_replicas(0.5, 3, 0.5, full) == 0.5
    assert placeable_replicas(7.0, 1, 0.5, None) == 7.0
    assert placeable_replicas(7.0, 1, 0.0, full) == 7.0  # a replica that reserves nothing


def test_placeable_replicas_asks_past_the_free_cpus_up_to_what_the_autoscaler_may_add() -> None:
    # KubeRay: 4 CPUs now (one worker), up to 16 (head 0 + 4 workers x 4): asking past the free
    # CPUs is how the autoscaler learns a node is needed, but never past the groups' maximum
    cluster = ClusterCapacity(free_cpus=0.5, total_cpus=4.0, max_cpus=16.0)
    assert cluster.headroom_cpus() == 12.5
    assert placeable_replicas(40.0, 2, 1.0, cluster) == 14.0
    assert placeable_replicas(5.0, 2, 1.0, cluster) == 5.0
    # at its maximum already: only the free CPUs count
    grown = ClusterCapacity(free_cpus=1.0, total_cpus=16.0, max_cpus=16.0)
    assert placeable_replicas(40.0, 10, 1.0, grown) == 11.0

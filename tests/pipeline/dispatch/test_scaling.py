"""The scaling maths without Ray: replicas wanted for a backlog, the Dispatcher's in-flight cap,
and the backlog report that travels between them."""

from __future__ import annotations

import math
import time

import pytest

from pipeline.dispatch.scaling import BacklogReport, desired_replicas, inflight_cap


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

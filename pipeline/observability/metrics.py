"""A small seam between domain code and the metrics backend.

Domain code records against ``MetricSpec``s from the catalogue; inside Ray replicas the backend
is ``actors.replica_setup.RayMetrics`` (exported by Ray's metrics agent), elsewhere (unit tests,
the bare-uvicorn benchmark) ``InMemoryMetrics``. Keeps ``pipeline/`` free of Ray imports.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

from core.metric_catalogue import MetricSpec


class Metrics(Protocol):
    def inc(self, spec: MetricSpec, labels: dict[str, str], value: float = 1.0) -> None: ...

    def observe(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None: ...

    def set(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None: ...


class InMemoryMetrics:
    """Keeps values in dicts; what tests assert on when Ray is not involved."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.observations: dict[str, list[float]] = defaultdict(list)
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, spec: MetricSpec, labels: dict[str, str], value: float = 1.0) -> None:
        self.counters[(spec.name, tuple(sorted(labels.items())))] += value

    def observe(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        self.observations[spec.name].append(value)

    def set(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        self.gauges[(spec.name, tuple(sorted(labels.items())))] = value

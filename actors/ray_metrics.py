"""``pipeline.observability.metrics.Metrics`` backed by ``ray.util.metrics``: recorded in the
replica, exported by Ray's metrics agent (prefix ``ray_``; counters get ``_total``)."""

from __future__ import annotations

from typing import Any

from ray.util import metrics as ray_metrics

from core import metric_catalogue as mc
from core.metric_catalogue import MetricSpec


class RayMetrics:
    def __init__(self) -> None:
        self._instruments: dict[str, Any] = {}

    def _get(self, spec: MetricSpec) -> Any:
        instrument = self._instruments.get(spec.name)
        if instrument is None:
            if spec.kind == "counter":
                instrument = ray_metrics.Counter(spec.name, spec.description, tag_keys=spec.labels)
            elif spec.kind == "histogram":
                buckets = (
                    mc.FAST_BUCKETS_S
                    if spec in (mc.HTTP_LATENCY, mc.RATE_LIMIT_WAIT_SECONDS)
                    else mc.LATENCY_BUCKETS_S
                )
                instrument = ray_metrics.Histogram(
                    spec.name, spec.description, boundaries=buckets, tag_keys=spec.labels
                )
            else:
                instrument = ray_metrics.Gauge(spec.name, spec.description, tag_keys=spec.labels)
            self._instruments[spec.name] = instrument
        return instrument

    def inc(self, spec: MetricSpec, labels: dict[str, str], value: float = 1.0) -> None:
        self._get(spec).inc(value, tags=labels)

    def observe(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        self._get(spec).observe(value, tags=labels)

    def set(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        self._get(spec).set(value, tags=labels)

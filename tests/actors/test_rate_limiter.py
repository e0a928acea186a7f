"""The rate-limiter actor books a reservation for every LLM and SDP call: those calls must not
leave task events behind, which Ray's GCS keeps in memory (the last 100,000 task attempts)."""

from __future__ import annotations

from actors.rate_limiter import RateLimiterActor


def test_reservations_record_no_task_events() -> None:
    actor_class = RateLimiterActor.__ray_actor_class__  # type: ignore[attr-defined]
    assert actor_class.reserve.__ray_enable_task_events__ is False
    assert actor_class.lease.__ray_enable_task_events__ is False

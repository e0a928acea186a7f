"""The backlog policy inside Serve's own policy wrapper (delays, scaling factors), without a
cluster: only the GCS read is replaced, by a backlog the test sets."""

from __future__ import annotations

import time

from ray.serve._private.common import DeploymentID
from ray.serve.autoscaling_policy import _apply_autoscaling_config
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from actors.backlog_policy import BacklogPolicy
from actors.deployment_options import SYNTHESIZER
from pipeline.dispatch.scaling import BacklogReport, ClusterCapacity


class SetBacklog(BacklogPolicy):
    backlog = 0
    intake_priority = False

    def _fresh_report(self) -> BacklogReport | None:
        return BacklogReport(
            claimable=self.backlog, running=0, intake_priority=self.intake_priority
        )


def _context(
    config: AutoscalingConfig, current: int, target: int, in_flight: float, state: dict
) -> AutoscalingContext:
    return AutoscalingContext(
        deployment_id=DeploymentID(name=SYNTHESIZER, app_name="ai_agents"),
        deployment_name=SYNTHESIZER,
        app_name="ai_agents",
        current_num_replicas=current,
        target_num_replicas=target,
        running_replicas=[],
        total_num_requests=in_flight,
        total_queued_requests=0,
        aggregated_metrics={},
        raw_metrics={},
        capacity_adjusted_min_replicas=config.min_replicas,
        capacity_adjusted_max_replicas=config.max_replicas,
        policy_state=state,
        last_scale_up_time=None,
        last_scale_down_time=None,
        current_time=time.time(),
        config=config,
    )


CONFIG = AutoscalingConfig(
    min_replicas=1,
    max_replicas=4,
    target_ongoing_requests=192,
    upscale_delay_s=0.3,
    downscale_delay_s=0.6,
)


class Pool:
    """One pool under Serve's policy wrapper: each ``tick`` is one control-loop iteration."""

    def __init__(self, replicas: int) -> None:
        self.policy = SetBacklog()
        self.decide = _apply_autoscaling_config(self.policy)
        self.replicas, self.state = replicas, {}

    def tick(self) -> int:
        context = _context(CONFIG, self.replicas, self.replicas, 2, self.state)
        wanted, self.state = self.decide(context)
        self.replicas = min(max(wanted, CONFIG.min_replicas), CONFIG.max_replicas)  # the clamp
        return self.replicas


def test_backlog_raises_the_target_after_the_upscale_delay_and_lowers_it_after_drain() -> None:
    pool = Pool(replicas=1)
    assert pool.tick() == 1  # 2 requests in flight, no backlog: one replica is plenty
    pool.policy.backlog = 700  # (700 + 2) / 192 -> 4 replicas wanted
    assert pool.tick() == 1  # not before the upscale delay
    time.sleep(0.35)
    assert pool.tick() == 4
    pool.policy.backlog = 0  # drained
    assert pool.tick() == 4
    time.sleep(0.3)
    assert pool.tick() == 4  # still inside the downscale delay
    time.sleep(0.35)
    assert pool.tick() == 1


def test_the_pool_holds_while_intake_has_priority_and_scales_once_the_storm_is_over() -> None:
    pool = Pool(replicas=2)
    pool.policy.backlog, pool.policy.intake_priority = 700, True  # a storm: backlog held back
    assert pool.tick() == 2
    time.sleep(0.35)
    assert pool.tick() == 2  # past the upscale delay: still held, and not scaled down either
    assert pool.state["intake_priority"] is True and pool.state["backlog_jobs"] == 700
    pool.policy.intake_priority = False  # the storm is over: the backlog counts again
    assert pool.tick() == 2
    time.sleep(0.35)
    assert pool.tick() == 4


def test_the_pool_grows_only_into_the_free_cpus_ray_reports() -> None:
    # 0.5 CPU per replica, 0.6 CPU free on a 2-CPU node: a 700-job backlog wants 4 replicas,
    # but only one more can start, so the policy asks for 2, not for two that stay pending
    pool = Pool(replicas=1)
    pool.policy = SetBacklog(cpus_per_replica=0.5)
    pool.policy._capacity = ClusterCapacity(free_cpus=0.6, total_cpus=2.0)
    pool.decide = _apply_autoscaling_config(pool.policy)
    pool.policy.backlog = 700
    pool.tick()
    time.sleep(0.35)
    assert pool.tick() == 2
    assert pool.state["free_cpus"] == 0.6
    # the replica started and took its CPUs: no room left, so the pool holds at 2
    pool.policy._capacity = ClusterCapacity(free_cpus=0.1, total_cpus=2.0)
    time.sleep(0.35)
    assert pool.tick() == 2
    # a cluster whose autoscaler may add nodes: asking past the free CPUs is how it adds one
    pool.policy._capacity = ClusterCapacity(free_cpus=0.1, total_cpus=2.0, max_cpus=6.0)
    assert pool.tick() == 2  # not before the upscale delay
    time.sleep(0.35)
    assert pool.tick() == 4

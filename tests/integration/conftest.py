"""One Ray + Serve + simulators stack for all integration tests (started once: Ray is slow
to start on two cores), built from the same local stack as `ai-agents demo` and the
benchmarks (``local_stack``)."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from core.ports import free_port
from local_stack.environment import apply_environment
from local_stack.ray_serve import deploy_app, ray_init_kwargs, start_ray, start_serve, stop_ray
from local_stack.simulators import Simulators
from pipeline.tenancy.credential_cipher import new_secret
from simulators.llm import KeyLimits
from tests.integration.harness import TEST_LLM_KEY, System, test_environment


@pytest.fixture(scope="session")
def simulators() -> Iterator[Simulators]:
    sims = Simulators(seed=1, llm_api_keys=[TEST_LLM_KEY], llm_latency_s=0.05)
    # a credit the key never exhausts here, so the polled credit gauge has a value to export
    sims.llm.keys.configure(KeyLimits(credits_usd=1_000.0))
    yield sims
    sims.stop()


async def _close_jobs_left_by_ray_free_tests(owner_url: str) -> None:
    """The session database is shared: Ray-free tests (tests/api, tests/browser, ...) accept
    webhooks for tenants whose SDP is a placeholder, and no dispatcher ran for them. Left
    queued, this session's dispatcher would retry them against unreachable SDPs while the
    integration tests wait for an idle queue; they are not this suite's work, so end them."""
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute(
            """UPDATE enhancements SET status = 'failed', finished_at = now(), updated_at = now(),
                      error = 'left queued by a Ray-free test (no dispatcher was running)',
                      lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE status IN ('queued', 'running')"""
        )
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def system(database, encryption_keys, simulators: Simulators, data_dir):
    await _close_jobs_left_by_ray_free_tests(database.owner_url)
    admin_token = new_secret("adm_")
    apply_environment(
        test_environment(
            database.service_url, encryption_keys, admin_token, simulators.llm_url, str(data_dir)
        )
    )
    # The Jobs API (re-enhance jobs) must reach this cluster, not another one on the machine:
    # its dashboard agent gets a free port and the cluster is named in its own temp dir.
    context = start_ray(
        **ray_init_kwargs(num_cpus=4, dashboard=True, temp_dir=str(data_dir / "ray"))
    )
    port = free_port()
    start_serve(port)
    deploy_app()
    sys = System(
        url=f"http://127.0.0.1:{port}",
        admin_token=admin_token,
        sdp=simulators.sdp,
        sdp_url=simulators.sdp_url,
        llm=simulators.llm,
        dashboard_url=f"http://{context.dashboard_url}",
    )
    yield sys
    await sys.http.aclose()
    stop_ray(shutdown_serve=True)

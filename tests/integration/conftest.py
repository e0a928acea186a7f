"""One Ray + Serve + simulators stack for all integration tests (started once: Ray is slow
to start on two cores)."""

from __future__ import annotations

import functools
import os

import asyncpg
import pytest

from actors.pool_options import APP_NAME
from pipeline.credential_cipher import new_secret
from simulators.llm.app import create_app as create_llm_app
from simulators.llm.state import LLMSimulatorState
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.serving import free_port, run_in_thread
from tests.integration.harness import System, test_environment


@pytest.fixture(scope="session")
def simulators():
    sdp_state = SimulatorState(seed=1)
    llm_state = LLMSimulatorState(api_keys=["sk-or-v1-test-llm-key"], latency_s=0.05)
    sdp = run_in_thread(create_sdp_app(sdp_state))
    llm = run_in_thread(create_llm_app(llm_state))
    yield sdp_state, sdp.url, llm_state, llm.url
    sdp.stop()
    llm.stop()


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
async def system(database, encryption_keys, simulators, data_dir):
    import ray
    from ray import serve

    sdp_state, sdp_url, llm_state, llm_url = simulators
    await _close_jobs_left_by_ray_free_tests(database.owner_url)
    admin_token = new_secret("adm_")
    os.environ.update(
        test_environment(database.service_url, encryption_keys, admin_token, llm_url, str(data_dir))
    )
    from pipeline.core.settings import get_settings

    get_settings.cache_clear()
    # ray.init() cannot pick the dashboard agent's port (always 52365): with a second Ray
    # cluster on the machine the agent cannot bind and the Jobs API has no agent to submit to.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            ray._private.parameter,
            "RayParams",
            functools.partial(
                ray._private.parameter.RayParams, dashboard_agent_listen_port=free_port()
            ),
        )
        context = ray.init(
            num_cpus=4,
            include_dashboard=True,
            dashboard_port=free_port(),
            logging_level="warning",
            namespace="ai_agents",
            log_to_driver=False,
            _temp_dir=str(data_dir / "ray"),
        )
    # A Ray Job's driver is pointed at the cluster named in <temp dir>/ray_current_cluster,
    # else at any Ray cluster found running on the machine; name this one, in its own dir.
    ray._private.utils.write_ray_address(context.address_info["gcs_address"], str(data_dir / "ray"))
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    from serve_app.app_builder import build_app

    serve.run(build_app(), name=APP_NAME, route_prefix="/")
    sys = System(
        url=f"http://127.0.0.1:{port}",
        admin_token=admin_token,
        sdp=sdp_state,
        sdp_url=sdp_url,
        llm=llm_state,
        dashboard_url=f"http://{context.dashboard_url}",
    )
    yield sys
    await sys.http.aclose()
    serve.shutdown()
    ray.shutdown()

"""The Ray-free parts of the local stack the demo, the benchmarks and the integration tests
share: the simulators over real HTTP, the service environment, and the one polling loop."""

from __future__ import annotations

import os

import httpx

from core.settings import get_settings
from local_stack.environment import apply_environment, service_environment
from local_stack.results import poll_until
from local_stack.simulators import Simulators


def test_simulators_serve_both_apis_and_record_notes() -> None:
    sims = Simulators(seed=3, llm_api_keys=["sk-or-v1-only"], sdp_latency_ms=1)
    try:
        sims.add_portal("acme", "sdp-key")
        ticket = sims.sdp.add_request("acme", subject="VPN down", description="since 9:00")
        answer = httpx.get(
            f"{sims.sdp_url}/api/v3/requests/{ticket['id']}",
            headers={"authtoken": "sdp-key", "Accept": "application/vnd.manageengine.sdp.v3+json"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["request"]["subject"] == "VPN down"
        refused = httpx.post(
            f"{sims.llm_url}/api/v1/chat/completions",
            headers={"Authorization": "Bearer sk-or-v1-other"},
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert refused.status_code == 401
        assert sims.notes_by_ticket(["acme"]) == {}
    finally:
        sims.stop()


def test_demo_data_seeds_the_demo_portals() -> None:
    sims = Simulators(seed=7, demo_data=True)
    try:
        assert {"acme", "globex"} <= set(sims.sdp.portals)
    finally:
        sims.stop()


def test_service_environment_points_the_service_at_the_local_parts() -> None:
    env = service_environment(
        database_url="postgresql://svc@/db",
        encryption_keys="k1",
        admin_token="adm_x",
        data_dir="/tmp/x",
        llm_url="http://127.0.0.1:1234",
        llm_api_key="sk-or-v1-t",
        metrics_token="met_x",
    )
    saved = dict(os.environ)  # replace=True removes every AI_AGENTS_* variable: restore all
    try:
        os.environ["AI_AGENTS_LLM_MODEL"] = "left/over"
        os.environ["AI_AGENTS_LOG_LEVEL"] = "DEBUG"
        apply_environment({"AI_AGENTS_LOG_LEVEL": "WARNING"})
        assert get_settings().log_level == "WARNING"  # the settings cache was cleared
        assert os.environ["AI_AGENTS_LLM_MODEL"] == "left/over"  # merged, not replaced
        apply_environment(env, replace=True)
        settings = get_settings()
        assert "AI_AGENTS_LLM_MODEL" not in os.environ and "AI_AGENTS_LOG_LEVEL" not in os.environ
        assert settings.database_url is not None
        assert settings.database_url.get_secret_value() == "postgresql://svc@/db"
        assert settings.llm_base_url == "http://127.0.0.1:1234/api/v1"
        assert settings.sdp_allow_loopback is True
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


async def test_poll_until_reports_the_last_answer_and_whether_it_was_final() -> None:
    answers = iter(range(10))

    async def probe() -> int:
        return next(answers)

    assert await poll_until(probe, lambda n: n >= 3, timeout_s=5, interval_s=0) == (3, True)
    last, final = await poll_until(probe, lambda n: n > 100, timeout_s=0, interval_s=0)
    assert (last, final) == (4, False)


def test_the_embedded_ray_gets_this_machines_cpus_unless_the_setting_says_otherwise() -> None:
    from local_stack.ray_serve import machine_cpus

    assert machine_cpus() == len(os.sched_getaffinity(0))  # what `nproc` prints
    assert machine_cpus(override=3) == 3  # AI_AGENTS_RAY_NUM_CPUS

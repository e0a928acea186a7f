"""The SDP simulator's injected faults: 429s with and without Retry-After, 5xx outages, hangs,
rate limits, latency, failed envelopes and writes that land before the error."""

from __future__ import annotations

import time

import httpx
import pytest

from simulators.servicedesk import SimulatorState
from tests.simulators.servicedesk_world import ACME, CLOUD, ONPREM, form, inner

GET_VPN = (f"{ACME}/requests/123640000000240013", CLOUD)


def test_429_with_and_without_retry_after(http: httpx.Client, state: SimulatorState) -> None:
    state.set_faults("acme", http_429_next=1, retry_after_s=2)
    r = http.get(GET_VPN[0], headers=GET_VPN[1])
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert inner(r.json())["status_code"] == 4015
    assert http.get(GET_VPN[0], headers=GET_VPN[1]).status_code == 200
    state.set_faults("acme", http_429_next=1)
    r = http.get(GET_VPN[0], headers=GET_VPN[1])
    assert r.status_code == 429 and "Retry-After" not in r.headers


def test_5xx_outage_and_recovery(http: httpx.Client, state: SimulatorState) -> None:
    state.set_faults("acme", http_5xx_next=2, http_5xx_status=503)
    codes = [http.get(GET_VPN[0], headers=GET_VPN[1]).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    state.set_faults("acme", http_5xx_next=1, http_5xx_status=500)
    r = http.get(GET_VPN[0], headers=GET_VPN[1])
    assert r.status_code == 500 and inner(r.json())["status_code"] == 4004
    state.set_faults("acme", outage="503")
    r = http.get(GET_VPN[0], headers=GET_VPN[1])
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    assert http.get("/api/v3/requests/1001", headers=ONPREM).status_code == 200  # per portal
    state.set_faults("acme")
    assert http.get(GET_VPN[0], headers=GET_VPN[1]).status_code == 200


def test_hang_outage_times_out_then_recovers(http: httpx.Client, state: SimulatorState) -> None:
    state.set_faults("acme", outage="hang")
    with pytest.raises(httpx.ReadTimeout):
        http.get(GET_VPN[0], headers=GET_VPN[1], timeout=0.3)
    state.set_faults("acme")
    assert http.get(GET_VPN[0], headers=GET_VPN[1]).status_code == 200


def test_rate_limit_per_minute_latency_and_match(http: httpx.Client, state: SimulatorState) -> None:
    state.set_faults("acme", rate_limit_per_minute=3)
    codes = [http.get(GET_VPN[0], headers=GET_VPN[1]).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    state.set_faults("acme", latency_ms=150)
    started = time.monotonic()
    http.get(GET_VPN[0], headers=GET_VPN[1])
    assert time.monotonic() - started >= 0.14
    state.set_faults("acme", http_5xx_next=5, match=r"^POST .*/notes$")
    assert http.get(GET_VPN[0], headers=GET_VPN[1]).status_code == 200
    r = http.post(
        f"{GET_VPN[0]}/notes", headers=CLOUD, data=form({"request_note": {"description": "x"}})
    )
    assert r.status_code == 503


def test_probabilistic_faults(http: httpx.Client, state: SimulatorState) -> None:
    state.set_faults("acme", http_5xx_probability=0.5, http_429_probability=0.0)
    codes = {http.get(GET_VPN[0], headers=GET_VPN[1]).status_code for _ in range(30)}
    assert codes == {200, 503}
    state.set_faults("acme", http_429_probability=1.0)
    assert http.get(GET_VPN[0], headers=GET_VPN[1]).status_code == 429
    with pytest.raises(ValueError):
        state.set_faults("acme", http_5xx_probability=2.0)
    with pytest.raises(ValueError):
        state.add_portal("acme", "other-key", "cloud")


def test_failed_envelope_and_fail_after_effect(http: httpx.Client, state: SimulatorState) -> None:
    state.set_faults("acme", failed_envelope_next=1, failed_envelope_message="Try later")
    r = http.get(GET_VPN[0], headers=GET_VPN[1])
    assert r.status_code == 200 and inner(r.json())["message"] == "Try later"
    state.set_faults("acme", http_5xx_next=1, http_5xx_status=500, fail_after_effect=True)
    r = http.post(
        f"{GET_VPN[0]}/notes", headers=CLOUD, data=form({"request_note": {"description": "landed"}})
    )
    assert r.status_code == 500
    assert [n.description for n in state.recorded_notes("acme")] == ["landed"]


def test_request_log_counts_calls(http: httpx.Client, state: SimulatorState) -> None:
    http.get(GET_VPN[0], headers=GET_VPN[1])
    http.get("/api/v3/requests/1", headers={"authtoken": "wrong"})
    assert [(c.portal, c.method, c.status) for c in state.calls()] == [
        ("acme", "GET", 200),
        (None, "GET", 401),
    ]
    assert len(state.calls("acme", "GET", "/requests/")) == 1

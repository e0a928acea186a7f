"""Driving the SDP simulator from outside: its control API, the webhook sender (HMAC and token
signing, v3 and flat payloads), the demo-seed hook and the standalone CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.webhook_auth import sign
from simulators.servicedesk import (
    SimulatorControl,
    SimulatorState,
    build_payload,
    seed_demo,
    send_webhook,
)
from simulators.serving import ServerHandle, free_port, run_in_thread
from tests.simulators.servicedesk_world import ACME, CLOUD, CLOUD_KEY, form


def test_control_api_drives_a_simulator(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState, http: httpx.Client
) -> None:
    with SimulatorControl(server[0].url) as control:
        assert control.health()
        control.reset()
        control.add_portal("initech", "initech-key", "onprem", accepted_note_keys=["note"])
        [rid] = control.add_requests("initech", [{"subject": "Disk full", "id": "77"}])
        control.set_request_flags("initech", rid, reject_notes_reason="Request is closed")
        assert control.get_request("initech", rid)["reject_notes_reason"] == "Request is closed"
        control.set_request_flags("initech", rid, reject_notes_reason=None)
        control.set_faults("initech", http_429_next=1, retry_after_s=0)
        assert control.update_faults("initech", latency_ms=1)["http_429_next"] == 1
        headers = {"authtoken": "initech-key"}
        assert http.get("/api/v3/requests/77", headers=headers).status_code == 429
        r = http.post(
            "/api/v3/requests/77/notes",
            headers=headers,
            data=form({"request_note": {"description": "x"}}),
        )
        assert r.status_code == 400  # this build only knows `note`
        http.post(
            "/api/v3/requests/77/notes", headers=headers, data=form({"note": {"description": "y"}})
        )
        assert [n["description"] for n in control.notes("initech", "77")] == ["y"]
        assert len(control.calls("initech", "POST")) == 2
        control.clear_faults("initech")
        bad = httpx.post(f"{server[0].url}/_sim/portals", json={"edition": "cloud"})
        assert bad.status_code == 400 and "name" in bad.json()["detail"]
        assert httpx.get(f"{server[0].url}/_sim/portals/nope/faults").status_code == 404
        assert (
            httpx.put(f"{server[0].url}/_sim/portals/initech/faults", json={"bogus": 1}).status_code
            == 400
        )


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: Request) -> JSONResponse:
        seen.append((dict(request.headers), await request.body()))
        return JSONResponse({"status": "queued"}, status_code=202)

    with run_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as handle:
        yield f"{handle.url}/hook", seen


def test_webhook_hmac_signature_verifies_independently(
    receiver: tuple[str, list[Any]], state: SimulatorState
) -> None:
    url, seen = receiver
    seen.clear()
    payload = build_payload(state.get_request("acme", "123640000000240013"), "v3")
    response = send_webhook(url, payload, "hmac", "s3cret", timestamp=1_700_000_000)
    assert response.status_code == 202
    headers, raw = seen[-1]
    assert headers["x-timestamp"] == "1700000000"
    assert headers["x-signature"] == sign("s3cret", 1_700_000_000, raw)
    assert json.loads(raw)["request"]["id"] == "123640000000240013"
    send_webhook(url, payload, "token", "tok-1")
    assert seen[-1][0]["x-webhook-token"] == "tok-1" and "x-signature" not in seen[-1][0]


def test_flat_payload_and_control_fired_webhook(
    server: tuple[ServerHandle, SimulatorState],
    receiver: tuple[str, list[Any]],
    state: SimulatorState,
) -> None:
    url, seen = receiver
    flat = build_payload(state.get_request("globex", "1001"), "flat", event="resolved")
    assert flat["ticket_id"] == "1001" and flat["resolution"] == "Replaced the fuser"
    assert flat["resolved_at"].startswith("2023-11-14T22:") and flat["event"] == "resolved"
    with SimulatorControl(server[0].url) as control:
        result = control.fire_webhook("globex", "1001", url, "k", shape="flat")
    assert result["status_code"] == 202 and result["body"] == {"status": "queued"}
    headers, raw = seen[-1]
    assert headers["x-signature"] == sign("k", headers["x-timestamp"], raw)
    assert abs(int(headers["x-timestamp"]) - time.time()) < 60


def test_seed_demo_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("simulators.demo_data")

    def seed_servicedesk(state: SimulatorState) -> None:
        state.add_portal("demo", "demo-key", "cloud")
        state.add_request("demo", subject="Seeded")

    module.seed_servicedesk = seed_servicedesk  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "simulators.demo_data", module)
    state = SimulatorState()
    seed_demo(state)
    assert state.portal("demo").edition == "cloud" and len(state.portal("demo").requests) == 1


def test_cli_runs_standalone() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.servicedesk",
            "--port",
            str(port),
            "--portal",
            f"acme:{CLOUD_KEY}:cloud",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        with SimulatorControl(f"http://127.0.0.1:{port}", timeout_s=0.5) as control:
            while not control.health():
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        r = httpx.get(f"http://127.0.0.1:{port}{ACME}/requests", headers=CLOUD)
        assert r.status_code == 200 and r.json()["requests"] == []
    finally:
        proc.terminate()
        proc.wait(10)

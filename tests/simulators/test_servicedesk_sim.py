"""The SDP simulator over real loopback HTTP: it accepts what real clients send and rejects
what real SDP rejects, with faults, the control API, the webhook sender and the CLI."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
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

from simulators.servicedesk import (
    SimulatorControl,
    SimulatorState,
    build_payload,
    display_value,
    seed_demo,
    send_webhook,
    start_in_thread,
)
from simulators.serving import ServerHandle, free_port, run_in_thread

CLOUD_KEY, ONPREM_KEY = "1000.acme-oauth-token-abc", "9F2C-ONPREM-GLOBEX-KEY"
CLOUD = {"Authorization": f"Zoho-oauthtoken {CLOUD_KEY}"}
ONPREM = {"authtoken": ONPREM_KEY}
ACME = "/app/acme/api/v3"
# Modelled on the real Cloud GET sample (reference §1.8), with our own data.
VPN_TICKET = {
    "id": "123640000000240013", "display_id": "102", "subject": "VPN drops every 10 minutes",
    "description": "<div>User at 10.20.30.40 loses the tunnel.</div>",
    "status": {"name": "Open"}, "priority": {"name": "High", "color": "#ff0000"},
    "requester": {"id": "123640000000244019", "name": "Dana Whitfield",
                  "email_id": "dana@acme.example"},
    "technician": None, "group": {"name": "Network"}, "mode": {"name": "E-Mail"},
    "created_time": {"value": "1593000300533"}, "udf_fields": {"udf_char1": "Branch 4"},
}


def form(obj: Any) -> dict[str, str]:
    return {"input_data": obj if isinstance(obj, str) else json.dumps(obj)}


def inner(body: dict[str, Any]) -> dict[str, Any]:
    status = body["response_status"]
    status = status[0] if isinstance(status, list) else status
    assert status["status_code"] == 4000 and status["status"] == "failed"
    return status["messages"][0]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerHandle, SimulatorState]]:
    handle, state = start_in_thread(SimulatorState(seed=7))
    yield handle, state
    handle.stop()


@pytest.fixture(scope="module")
def http(server: tuple[ServerHandle, SimulatorState]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0].url, timeout=5) as client:
        yield client


@pytest.fixture
def state(server: tuple[ServerHandle, SimulatorState]) -> SimulatorState:
    state = server[1]
    state.reset()
    state.add_portal("acme", CLOUD_KEY, "cloud")
    state.add_portal("globex", ONPREM_KEY, "onprem")
    state.add_request("acme", VPN_TICKET)
    state.add_request("globex", subject="Printer offline", description="<p>10.1.1.9</p>",
                      id="1001", status="Resolved", resolution="Replaced the fuser",
                      created_time=1_700_000_000_000, resolved_time=1_700_000_360_000)
    return state


def test_get_request_has_sdp_shapes(http: httpx.Client, state: SimulatorState) -> None:
    r = http.get(f"{ACME}/requests/123640000000240013", headers=CLOUD)
    assert r.status_code == 200
    body = r.json()
    assert body["response_status"] == {"status_code": 2000, "status": "success"}
    req = body["request"]
    for name in ("id", "display_id", "subject", "description", "status", "priority", "requester",
                 "technician", "group", "created_time", "last_updated_time", "resolved_time",
                 "resolution", "udf_fields", "has_notes"):
        assert name in req
    assert isinstance(req["id"], str) and isinstance(req["status"]["id"], str)
    assert req["created_time"] == {"value": "1593000300533",
                                   "display_value": display_value(1593000300533)}
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4} \d{2}:\d{2} [AP]M",
                        req["created_time"]["display_value"])
    assert req["requester"]["email_id"] == "dana@acme.example"
    resolved = http.get("/api/v3/requests/1001", headers=ONPREM).json()["request"]
    assert resolved["resolution"]["content"] == "Replaced the fuser"
    assert resolved["resolved_time"]["value"] == "1700000360000"
    assert display_value(1593000300533) == "Jun 24, 2020 12:05 PM"


@pytest.mark.parametrize("path,headers", [
    (ACME, CLOUD),
    (ACME, {"Authorization": f"Bearer {CLOUD_KEY}"}),
    ("/api/v3", CLOUD),  # older cloud clients omit /app/<portal>
    ("/app/globex/api/v3", ONPREM),
    ("/api/v3", ONPREM),
    ("/api/v3", {"Authorization": f"authtoken: {ONPREM_KEY}"}),
    ("/api/v3", {"TECHNICIAN_KEY": ONPREM_KEY}),
])
@pytest.mark.parametrize("accept", ["application/vnd.manageengine.sdp.v3+json",
                                    "application/v3+json", "*/*"])
def test_accepted_auth_styles_and_accept_headers(
    http: httpx.Client, state: SimulatorState, path: str, headers: dict[str, str], accept: str
) -> None:
    r = http.get(f"{path}/requests", headers={**headers, "Accept": accept})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["response_status"], list)


@pytest.mark.parametrize("path,headers", [
    ("/api/v3", {}),
    ("/api/v3", {"authtoken": "not-a-key"}),
    ("/api/v3", {"Authorization": f"Zoho-oauthtoken {ONPREM_KEY}"}),  # on-prem wants authtoken
    (ACME, {"authtoken": CLOUD_KEY}),  # cloud wants an OAuth header
    (ACME, ONPREM),  # another tenant's valid key
])
def test_bad_credentials_are_401_4022(http: httpx.Client, state: SimulatorState, path: str,
                                      headers: dict[str, str]) -> None:
    r = http.get(f"{path}/requests/123640000000240013", headers=headers)
    assert r.status_code == 401
    assert inner(r.json()) == {"status_code": 4022, "type": "failed",
                               "message": "Invalid API key."}


@pytest.mark.parametrize("key", ["request_note", "note"])
def test_add_note_form_input_data(http: httpx.Client, state: SimulatorState, key: str) -> None:
    r = http.post("/api/v3/requests/1001/notes", headers=ONPREM,
                  data=form({key: {"description": "<b>AI</b> note"}}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["response_status"] == {"status_code": 2000, "status": "success"}
    note = body[key]
    assert note["show_to_requester"] is False and isinstance(note["id"], str)
    assert note["created_time"]["value"].isdigit() and "display_value" in note["added_time"]
    [recorded] = state.recorded_notes("globex", "1001")
    assert (recorded.wrapper_key, recorded.description, recorded.input_format) == (
        key, "<b>AI</b> note", "json")
    assert state.get_request("globex", "1001")["has_notes"] is True
    listed = http.get("/api/v3/requests/1001/notes", headers=ONPREM).json()
    assert [n["id"] for n in listed["notes"]] == [note["id"]]
    assert isinstance(listed["response_status"], list) and "list_info" in listed
    one = http.get(f"/api/v3/requests/1001/notes/{note['id']}", headers=ONPREM).json()
    assert one["note"]["description"] == "<b>AI</b> note"  # on-prem wraps single notes as `note`


def test_note_tolerates_python_repr_input(http: httpx.Client, state: SimulatorState) -> None:
    r = http.post("/api/v3/requests/1001/notes", headers=ONPREM,
                  data=form(str({"note": {"description": "x", "show_to_requester": False}})))
    assert r.status_code == 200
    assert state.recorded_notes()[0].input_format == "python_repr"


def test_multipart_input_data_is_accepted(http: httpx.Client, state: SimulatorState) -> None:
    r = http.post("/api/v3/requests/1001/notes", headers=ONPREM,
                  data=form({"note": {"description": "via multipart"}}),
                  files={"attachment": ("a.txt", b"hi")})
    assert r.status_code == 200, r.text
    assert state.recorded_notes()[0].description == "via multipart"


@pytest.mark.parametrize("kwargs,code,field", [
    ({"json": {"note": {"description": "x"}}}, 4000, "input_data"),
    ({"data": form("{not json")}, 4000, "input_data"),
    ({"data": form({"comment": {"description": "x"}})}, 4000, "comment"),
    ({"data": form({"note": {"description": "x", "show_to_requester": "false"}})}, 4021,
     "show_to_requester"),
])
def test_note_input_rejections(http: httpx.Client, state: SimulatorState, kwargs: dict[str, Any],
                               code: int, field: str) -> None:
    r = http.post("/api/v3/requests/1001/notes", headers=ONPREM, **kwargs)
    assert r.status_code == 400
    message = inner(r.json())
    assert message["status_code"] == code and message.get("field") == field
    if field == "input_data" and "json" in kwargs:
        assert message["message"] == "input_data is required"
    assert state.recorded_notes() == []


@pytest.mark.parametrize("note", [{}, {"description": ""}, {"description": "  "}])
def test_note_without_description_is_4012(http: httpx.Client, state: SimulatorState,
                                          note: dict[str, Any]) -> None:
    r = http.post(f"{ACME}/requests/123640000000240013/notes", headers=CLOUD,
                  data=form({"request_note": note}))
    assert r.status_code == 400
    assert inner(r.json()) == {"status_code": 4012, "type": "failed", "fields": ["description"]}


def test_closed_request_is_http_200_failed_envelope(http: httpx.Client,
                                                    state: SimulatorState) -> None:
    state.set_request_flags("globex", "1001", reject_notes_reason="Request is closed")
    r = http.post("/api/v3/requests/1001/notes", headers=ONPREM,
                  data=form({"note": {"description": "x"}}))
    assert r.status_code == 200
    assert r.json() == {"response_status": [{"status_code": 4000, "status": "failed", "messages": [
        {"status_code": 4000, "type": "failed", "message": "Request is closed"}]}]}
    assert state.recorded_notes() == []


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v3/requests/424242"),
    ("GET", "/api/v3/problems/1"),
    ("DELETE", "/api/v3/requests/1001"),
    ("GET", "/api/v3/requests/1001/notes/999"),
    ("GET", "/api/v2/whatever"),
])
def test_unknown_ids_and_paths_are_404_4007(http: httpx.Client, state: SimulatorState,
                                            method: str, path: str) -> None:
    r = http.request(method, path, headers=ONPREM)
    assert r.status_code == 404 and inner(r.json())["status_code"] == 4007


def test_trashed_request_is_404(http: httpx.Client, state: SimulatorState) -> None:
    state.set_request_flags("globex", "1001", deleted=True)
    assert http.get("/api/v3/requests/1001", headers=ONPREM).status_code == 404
    r = http.post("/api/v3/requests/1001/notes", headers=ONPREM,
                  data=form({"note": {"description": "x"}}))
    assert r.status_code == 404 and inner(r.json())["status_code"] == 4007


def _list(http: httpx.Client, list_info: dict[str, Any]) -> httpx.Response:
    params = {"input_data": json.dumps({"list_info": list_info})}
    return http.get("/api/v3/requests", headers=ONPREM, params=params)


def test_list_paging_and_short_rows(http: httpx.Client, state: SimulatorState) -> None:
    state.add_requests("globex", [{"subject": f"t{i}", "created_time": 1_600_000_000_000 + i}
                                  for i in range(24)])
    pages = [_list(http, {"row_count": 10, "start_index": s, "get_total_count": True}).json()
             for s in (1, 11, 21)]
    assert [p["list_info"]["has_more_rows"] for p in pages] == [True, True, False]
    assert [p["list_info"]["row_count"] for p in pages] == [10, 10, 5]
    assert pages[0]["list_info"]["total_count"] == 25
    ids = [r["id"] for p in pages for r in p["requests"]]
    assert len(ids) == len(set(ids)) == 25
    row = pages[0]["requests"][0]
    assert "description" not in row and "subject" in row and "status" in row
    wanted = _list(http, {"row_count": 1, "fields_required": ["description", "resolution"]})
    assert "description" in wanted.json()["requests"][0]


@pytest.mark.parametrize("list_info,field", [
    ({"row_count": 101}, "row_count"),
    ({"row_count": 10, "start_index": 0}, "start_index"),
    ({"search_criteria": {"field": "created_time", "condition": "around", "value": "1"}},
     "search_criteria"),
])
def test_list_rejections(http: httpx.Client, state: SimulatorState, list_info: dict[str, Any],
                         field: str) -> None:
    r = _list(http, list_info)
    assert r.status_code == 400 and inner(r.json()).get("field") == field


@pytest.mark.parametrize("criteria,expected", [
    ({"field": "created_time", "condition": "gt", "value": "1700000000000"}, {"late"}),
    ({"field": "created_time", "condition": "between",
      "values": ["1600000000000", "1700000000000"]}, {"1001", "early"}),
    ({"field": "resolved_time", "condition": "gte", "value": "1700000000000"}, {"1001"}),
    ({"field": "status.name", "condition": "is", "value": "resolved"}, {"1001"}),
    ([{"field": "status.name", "condition": "eq", "value": "Resolved"},
      {"field": "subject", "condition": "contains", "value": "late",
       "logical_operator": "OR"}], {"1001", "late"}),
])
def test_search_criteria(http: httpx.Client, state: SimulatorState, criteria: Any,
                         expected: set[str]) -> None:
    state.add_request("globex", id="early", subject="early", created_time=1_650_000_000_000)
    state.add_request("globex", id="late", subject="late", created_time=1_750_000_000_000)
    r = _list(http, {"row_count": 100, "search_criteria": criteria})
    assert r.status_code == 200, r.text
    assert {row["id"] for row in r.json()["requests"]} == expected


def test_update_request_and_worklog(http: httpx.Client, state: SimulatorState) -> None:
    change = {"request": {"status": {"name": "Closed"}, "udf_fields": {"udf_char2": "AI"},
                          "resolution": {"content": "Rebooted the concentrator"}}}
    r = http.put(f"{ACME}/requests/123640000000240013", headers=CLOUD, data=form(change))
    assert r.status_code == 200, r.text
    req = r.json()["request"]
    assert req["status"]["name"] == "Closed" and req["resolved_time"] is not None
    assert req["udf_fields"] == {"udf_char1": "Branch 4", "udf_char2": "AI"}
    assert req["resolution"]["content"] == "Rebooted the concentrator"
    for bad, code in (({"request": {"id": "9"}}, 4014),
                      ({"request": {"status": {"name": "Sleeping"}}}, 4001)):
        r = http.put(f"{ACME}/requests/123640000000240013", headers=CLOUD, data=form(bad))
        assert r.status_code == 400 and inner(r.json())["status_code"] == code
    r = http.put(f"{ACME}/requests/123640000000240013", headers=CLOUD, json=change)
    assert r.status_code == 400 and inner(r.json())["message"] == "input_data is required"
    worklog = {"worklog": {"description": "Triage", "time_spent": {"hours": "0", "minutes": "5"}}}
    r = http.post(f"{ACME}/requests/123640000000240013/worklogs", headers=CLOUD,
                  data=form(worklog))
    assert r.status_code == 200 and r.json()["worklog"]["time_spent"]["minutes"] == "5"


# -- faults --------------------------------------------------------------------------------
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


def test_rate_limit_per_minute_latency_and_match(http: httpx.Client,
                                                 state: SimulatorState) -> None:
    state.set_faults("acme", rate_limit_per_minute=3)
    codes = [http.get(GET_VPN[0], headers=GET_VPN[1]).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    state.set_faults("acme", latency_ms=150)
    started = time.monotonic()
    http.get(GET_VPN[0], headers=GET_VPN[1])
    assert time.monotonic() - started >= 0.14
    state.set_faults("acme", http_5xx_next=5, match=r"^POST .*/notes$")
    assert http.get(GET_VPN[0], headers=GET_VPN[1]).status_code == 200
    r = http.post(f"{GET_VPN[0]}/notes", headers=CLOUD,
                  data=form({"request_note": {"description": "x"}}))
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


def test_failed_envelope_and_fail_after_effect(http: httpx.Client,
                                               state: SimulatorState) -> None:
    state.set_faults("acme", failed_envelope_next=1, failed_envelope_message="Try later")
    r = http.get(GET_VPN[0], headers=GET_VPN[1])
    assert r.status_code == 200 and inner(r.json())["message"] == "Try later"
    state.set_faults("acme", http_5xx_next=1, http_5xx_status=500, fail_after_effect=True)
    r = http.post(f"{GET_VPN[0]}/notes", headers=CLOUD,
                  data=form({"request_note": {"description": "landed"}}))
    assert r.status_code == 500
    assert [n.description for n in state.recorded_notes("acme")] == ["landed"]


def test_request_log_counts_calls(http: httpx.Client, state: SimulatorState) -> None:
    http.get(GET_VPN[0], headers=GET_VPN[1])
    http.get("/api/v3/requests/1", headers={"authtoken": "wrong"})
    assert [(c.portal, c.method, c.status) for c in state.calls()] == [
        ("acme", "GET", 200), (None, "GET", 401)]
    assert len(state.calls("acme", "GET", "/requests/")) == 1


# -- control API, webhooks, CLI ------------------------------------------------------------
def test_control_api_drives_a_simulator(server: tuple[ServerHandle, SimulatorState],
                                        state: SimulatorState, http: httpx.Client) -> None:
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
        r = http.post("/api/v3/requests/77/notes", headers=headers,
                      data=form({"request_note": {"description": "x"}}))
        assert r.status_code == 400  # this build only knows `note`
        http.post("/api/v3/requests/77/notes", headers=headers,
                  data=form({"note": {"description": "y"}}))
        assert [n["description"] for n in control.notes("initech", "77")] == ["y"]
        assert len(control.calls("initech", "POST")) == 2
        control.clear_faults("initech")
        bad = httpx.post(f"{server[0].url}/_sim/portals", json={"edition": "cloud"})
        assert bad.status_code == 400 and "name" in bad.json()["detail"]
        assert httpx.get(f"{server[0].url}/_sim/portals/nope/faults").status_code == 404
        assert httpx.put(f"{server[0].url}/_sim/portals/initech/faults",
                         json={"bogus": 1}).status_code == 400


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
    expected = hmac.new(b"s3cret", b"1700000000." + raw, hashlib.sha256).hexdigest()
    assert headers["x-timestamp"] == "1700000000"
    assert headers["x-signature"] == f"sha256={expected}"
    assert json.loads(raw)["request"]["id"] == "123640000000240013"
    send_webhook(url, payload, "token", "tok-1")
    assert seen[-1][0]["x-webhook-token"] == "tok-1" and "x-signature" not in seen[-1][0]


def test_flat_payload_and_control_fired_webhook(
    server: tuple[ServerHandle, SimulatorState], receiver: tuple[str, list[Any]],
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
    digest = hmac.new(b"k", headers["x-timestamp"].encode() + b"." + raw, hashlib.sha256)
    assert headers["x-signature"] == "sha256=" + digest.hexdigest()
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
        [sys.executable, "-m", "simulators.servicedesk", "--port", str(port),
         "--portal", f"acme:{CLOUD_KEY}:cloud"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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

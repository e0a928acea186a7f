"""The SDP simulator's v3 API over real loopback HTTP: it accepts what real clients send
(both editions' auth styles, form and multipart `input_data`) and rejects what real SDP
rejects, with SDP's codes and envelope shapes."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from simulators.servicedesk import SimulatorState, display_value
from tests.simulators.servicedesk_world import (
    ACME,
    CLOUD,
    CLOUD_KEY,
    ONPREM,
    ONPREM_KEY,
    form,
    inner,
)


def test_get_request_has_sdp_shapes(http: httpx.Client, state: SimulatorState) -> None:
    r = http.get(f"{ACME}/requests/123640000000240013", headers=CLOUD)
    assert r.status_code == 200
    body = r.json()
    assert body["response_status"] == {"status_code": 2000, "status": "success"}
    req = body["request"]
    for name in (
        "id",
        "display_id",
        "subject",
        "description",
        "status",
        "priority",
        "requester",
        "technician",
        "group",
        "created_time",
        "last_updated_time",
        "resolved_time",
        "resolution",
        "udf_fields",
        "has_notes",
    ):
        assert name in req
    assert isinstance(req["id"], str) and isinstance(req["status"]["id"], str)
    assert req["created_time"] == {
        "value": "1593000300533",
        "display_value": display_value(1593000300533),
    }
    assert re.fullmatch(
        r"[A-Z][a-z]{2} \d{1,2}, \d{4} \d{2}:\d{2} [AP]M", req["created_time"]["display_value"]
    )
    assert req["requester"]["email_id"] == "dana@acme.example"
    resolved = http.get("/api/v3/requests/1001", headers=ONPREM).json()["request"]
    assert resolved["resolution"]["content"] == "Replaced the fuser"
    assert resolved["resolved_time"]["value"] == "1700000360000"
    assert display_value(1593000300533) == "Jun 24, 2020 12:05 PM"


@pytest.mark.parametrize(
    "path,headers",
    [
        (ACME, CLOUD),
        (ACME, {"Authorization": f"Bearer {CLOUD_KEY}"}),
        ("/api/v3", CLOUD),  # older cloud clients omit /app/<portal>
        ("/app/globex/api/v3", ONPREM),
        ("/api/v3", ONPREM),
        ("/api/v3", {"Authorization": f"authtoken: {ONPREM_KEY}"}),
        ("/api/v3", {"TECHNICIAN_KEY": ONPREM_KEY}),
    ],
)
@pytest.mark.parametrize(
    "accept", ["application/vnd.manageengine.sdp.v3+json", "application/v3+json", "*/*"]
)
def test_accepted_auth_styles_and_accept_headers(
    http: httpx.Client, state: SimulatorState, path: str, headers: dict[str, str], accept: str
) -> None:
    r = http.get(f"{path}/requests", headers={**headers, "Accept": accept})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["response_status"], list)


@pytest.mark.parametrize(
    "path,headers",
    [
        ("/api/v3", {}),
        ("/api/v3", {"authtoken": "not-a-key"}),
        ("/api/v3", {"Authorization": f"Zoho-oauthtoken {ONPREM_KEY}"}),  # on-prem wants authtoken
        (ACME, {"authtoken": CLOUD_KEY}),  # cloud wants an OAuth header
        (ACME, ONPREM),  # another tenant's valid key
    ],
)
def test_bad_credentials_are_401_4022(
    http: httpx.Client, state: SimulatorState, path: str, headers: dict[str, str]
) -> None:
    r = http.get(f"{path}/requests/123640000000240013", headers=headers)
    assert r.status_code == 401
    assert inner(r.json()) == {"status_code": 4022, "type": "failed", "message": "Invalid API key."}


@pytest.mark.parametrize("key", ["request_note", "note"])
def test_add_note_form_input_data(http: httpx.Client, state: SimulatorState, key: str) -> None:
    r = http.post(
        "/api/v3/requests/1001/notes",
        headers=ONPREM,
        data=form({key: {"description": "<b>AI</b> note"}}),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["response_status"] == {"status_code": 2000, "status": "success"}
    note = body[key]
    assert note["show_to_requester"] is False and isinstance(note["id"], str)
    assert note["created_time"]["value"].isdigit() and "display_value" in note["added_time"]
    [recorded] = state.recorded_notes("globex", "1001")
    assert (recorded.wrapper_key, recorded.description, recorded.input_format) == (
        key,
        "<b>AI</b> note",
        "json",
    )
    assert state.get_request("globex", "1001")["has_notes"] is True
    listed = http.get("/api/v3/requests/1001/notes", headers=ONPREM).json()
    assert [n["id"] for n in listed["notes"]] == [note["id"]]
    assert isinstance(listed["response_status"], list) and "list_info" in listed
    one = http.get(f"/api/v3/requests/1001/notes/{note['id']}", headers=ONPREM).json()
    assert one["note"]["description"] == "<b>AI</b> note"  # on-prem wraps single notes as `note`


def test_note_tolerates_python_repr_input(http: httpx.Client, state: SimulatorState) -> None:
    r = http.post(
        "/api/v3/requests/1001/notes",
        headers=ONPREM,
        data=form(str({"note": {"description": "x", "show_to_requester": False}})),
    )
    assert r.status_code == 200
    assert state.recorded_notes()[0].input_format == "python_repr"


def test_multipart_input_data_is_accepted(http: httpx.Client, state: SimulatorState) -> None:
    r = http.post(
        "/api/v3/requests/1001/notes",
        headers=ONPREM,
        data=form({"note": {"description": "via multipart"}}),
        files={"attachment": ("a.txt", b"hi")},
    )
    assert r.status_code == 200, r.text
    assert state.recorded_notes()[0].description == "via multipart"


@pytest.mark.parametrize(
    "kwargs,code,field",
    [
        ({"json": {"note": {"description": "x"}}}, 4000, "input_data"),
        ({"data": form("{not json")}, 4000, "input_data"),
        ({"data": form({"comment": {"description": "x"}})}, 4000, "comment"),
        (
            {"data": form({"note": {"description": "x", "show_to_requester": "false"}})},
            4021,
            "show_to_requester",
        ),
    ],
)
def test_note_input_rejections(
    http: httpx.Client, state: SimulatorState, kwargs: dict[str, Any], code: int, field: str
) -> None:
    r = http.post("/api/v3/requests/1001/notes", headers=ONPREM, **kwargs)
    assert r.status_code == 400
    message = inner(r.json())
    assert message["status_code"] == code and message.get("field") == field
    if field == "input_data" and "json" in kwargs:
        assert message["message"] == "input_data is required"
    assert state.recorded_notes() == []


@pytest.mark.parametrize("note", [{}, {"description": ""}, {"description": "  "}])
def test_note_without_description_is_4012(
    http: httpx.Client, state: SimulatorState, note: dict[str, Any]
) -> None:
    r = http.post(
        f"{ACME}/requests/123640000000240013/notes",
        headers=CLOUD,
        data=form({"request_note": note}),
    )
    assert r.status_code == 400
    assert inner(r.json()) == {"status_code": 4012, "type": "failed", "fields": ["description"]}


def test_closed_request_is_http_200_failed_envelope(
    http: httpx.Client, state: SimulatorState
) -> None:
    state.set_request_flags("globex", "1001", reject_notes_reason="Request is closed")
    r = http.post(
        "/api/v3/requests/1001/notes", headers=ONPREM, data=form({"note": {"description": "x"}})
    )
    assert r.status_code == 200
    assert r.json() == {
        "response_status": [
            {
                "status_code": 4000,
                "status": "failed",
                "messages": [
                    {"status_code": 4000, "type": "failed", "message": "Request is closed"}
                ],
            }
        ]
    }
    assert state.recorded_notes() == []


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v3/requests/424242"),
        ("GET", "/api/v3/problems/1"),
        ("DELETE", "/api/v3/requests/1001"),
        ("GET", "/api/v3/requests/1001/notes/999"),
        ("GET", "/api/v2/whatever"),
    ],
)
def test_unknown_ids_and_paths_are_404_4007(
    http: httpx.Client, state: SimulatorState, method: str, path: str
) -> None:
    r = http.request(method, path, headers=ONPREM)
    assert r.status_code == 404 and inner(r.json())["status_code"] == 4007


def test_trashed_request_is_404(http: httpx.Client, state: SimulatorState) -> None:
    state.set_request_flags("globex", "1001", deleted=True)
    assert http.get("/api/v3/requests/1001", headers=ONPREM).status_code == 404
    r = http.post(
        "/api/v3/requests/1001/notes", headers=ONPREM, data=form({"note": {"description": "x"}})
    )
    assert r.status_code == 404 and inner(r.json())["status_code"] == 4007


def _list(http: httpx.Client, list_info: dict[str, Any]) -> httpx.Response:
    params = {"input_data": json.dumps({"list_info": list_info})}
    return http.get("/api/v3/requests", headers=ONPREM, params=params)


def test_list_paging_and_short_rows(http: httpx.Client, state: SimulatorState) -> None:
    state.add_requests(
        "globex", [{"subject": f"t{i}", "created_time": 1_600_000_000_000 + i} for i in range(24)]
    )
    pages = [
        _list(http, {"row_count": 10, "start_index": s, "get_total_count": True}).json()
        for s in (1, 11, 21)
    ]
    assert [p["list_info"]["has_more_rows"] for p in pages] == [True, True, False]
    assert [p["list_info"]["row_count"] for p in pages] == [10, 10, 5]
    assert pages[0]["list_info"]["total_count"] == 25
    ids = [r["id"] for p in pages for r in p["requests"]]
    assert len(ids) == len(set(ids)) == 25
    row = pages[0]["requests"][0]
    assert "description" not in row and "subject" in row and "status" in row
    wanted = _list(http, {"row_count": 1, "fields_required": ["description", "resolution"]})
    assert "description" in wanted.json()["requests"][0]


@pytest.mark.parametrize(
    "list_info,field",
    [
        ({"row_count": 101}, "row_count"),
        ({"row_count": 10, "start_index": 0}, "start_index"),
        (
            {"search_criteria": {"field": "created_time", "condition": "around", "value": "1"}},
            "search_criteria",
        ),
    ],
)
def test_list_rejections(
    http: httpx.Client, state: SimulatorState, list_info: dict[str, Any], field: str
) -> None:
    r = _list(http, list_info)
    assert r.status_code == 400 and inner(r.json()).get("field") == field


@pytest.mark.parametrize(
    "criteria,expected",
    [
        ({"field": "created_time", "condition": "gt", "value": "1700000000000"}, {"late"}),
        (
            {
                "field": "created_time",
                "condition": "between",
                "values": ["1600000000000", "1700000000000"],
            },
            {"1001", "early"},
        ),
        ({"field": "resolved_time", "condition": "gte", "value": "1700000000000"}, {"1001"}),
        ({"field": "status.name", "condition": "is", "value": "resolved"}, {"1001"}),
        (
            [
                {"field": "status.name", "condition": "eq", "value": "Resolved"},
                {
                    "field": "subject",
                    "condition": "contains",
                    "value": "late",
                    "logical_operator": "OR",
                },
            ],
            {"1001", "late"},
        ),
    ],
)
def test_search_criteria(
    http: httpx.Client, state: SimulatorState, criteria: Any, expected: set[str]
) -> None:
    state.add_request("globex", id="early", subject="early", created_time=1_650_000_000_000)
    state.add_request("globex", id="late", subject="late", created_time=1_750_000_000_000)
    r = _list(http, {"row_count": 100, "search_criteria": criteria})
    assert r.status_code == 200, r.text
    assert {row["id"] for row in r.json()["requests"]} == expected


def test_update_request_and_worklog(http: httpx.Client, state: SimulatorState) -> None:
    change = {
        "request": {
            "status": {"name": "Closed"},
            "udf_fields": {"udf_char2": "AI"},
            "resolution": {"content": "Rebooted the concentrator"},
        }
    }
    r = http.put(f"{ACME}/requests/123640000000240013", headers=CLOUD, data=form(change))
    assert r.status_code == 200, r.text
    req = r.json()["request"]
    assert req["status"]["name"] == "Closed" and req["resolved_time"] is not None
    assert req["udf_fields"] == {"udf_char1": "Branch 4", "udf_char2": "AI"}
    assert req["resolution"]["content"] == "Rebooted the concentrator"
    for bad, code in (
        ({"request": {"id": "9"}}, 4014),
        ({"request": {"status": {"name": "Sleeping"}}}, 4001),
    ):
        r = http.put(f"{ACME}/requests/123640000000240013", headers=CLOUD, data=form(bad))
        assert r.status_code == 400 and inner(r.json())["status_code"] == code
    r = http.put(f"{ACME}/requests/123640000000240013", headers=CLOUD, json=change)
    assert r.status_code == 400 and inner(r.json())["message"] == "input_data is required"
    worklog = {"worklog": {"description": "Triage", "time_spent": {"hours": "0", "minutes": "5"}}}
    r = http.post(f"{ACME}/requests/123640000000240013/worklogs", headers=CLOUD, data=form(worklog))
    assert r.status_code == 200 and r.json()["worklog"]["time_spent"]["minutes"] == "5"

"""SdpClient against the SDP simulator over real loopback HTTP: happy paths, envelopes,
retries, give-ups, idempotent note writes and secrecy of the API key."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from pipeline.sdp.client import SdpClient
from pipeline.sdp.wire import (
    SdpAuthError,
    SdpError,
    SdpNotFound,
    SdpRateLimited,
    SdpRejected,
    SdpUnavailable,
    raise_for_envelope,
    retry_after_seconds,
)
from simulators.servicedesk import SimulatorState, start_in_thread
from simulators.serving import ServerHandle, free_port

CLOUD_KEY = "1000.cloud-secret-4b1d9e"
ONPREM_KEY = "ONPREM-SECRET-77AC31"
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerHandle, SimulatorState]]:
    handle, state = start_in_thread(SimulatorState(seed=3))
    yield handle, state
    handle.stop()


@pytest.fixture
def state(server: tuple[ServerHandle, SimulatorState]) -> SimulatorState:
    state = server[1]
    state.reset()
    state.add_portal("acme", CLOUD_KEY, "cloud")
    state.add_portal("globex", ONPREM_KEY, "onprem")
    state.add_request(
        "acme",
        id="5001",
        subject="VPN drops",
        description="<p>10.2.3.4</p>",
        priority="High",
        requester={"name": "Dana", "email_id": "d@acme.example"},
    )
    state.add_request("globex", id="42", subject="Printer offline")
    return state


@pytest.fixture
async def cloud(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> AsyncIterator[SdpClient]:
    async with SdpClient(server[0].url, CLOUD_KEY, "cloud", portal="acme", **FAST) as client:
        yield client


@pytest.fixture
async def onprem(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> AsyncIterator[SdpClient]:
    async with SdpClient(server[0].url, ONPREM_KEY, "onprem", **FAST) as client:
        yield client


async def test_get_request_cloud_and_onprem(cloud: SdpClient, onprem: SdpClient) -> None:
    req = await cloud.get_request("5001")
    assert req["subject"] == "VPN drops" and req["priority"]["name"] == "High"
    assert req["requester"]["email_id"] == "d@acme.example"
    assert (await onprem.get_request(42))["id"] == "42"


async def test_add_note_uses_edition_wrapper_and_form(
    cloud: SdpClient, onprem: SdpClient, state: SimulatorState
) -> None:
    cloud_id = await cloud.add_note("5001", "<p>Similar: #4410</p>")
    onprem_id = await onprem.add_note("42", "<p>visible</p>", show_to_requester=True)
    [c] = state.recorded_notes("acme")
    [o] = state.recorded_notes("globex")
    assert (c.note_id, c.wrapper_key, c.show_to_requester, c.input_format) == (
        cloud_id,
        "request_note",
        False,
        "json",
    )
    assert (o.note_id, o.wrapper_key, o.show_to_requester) == (onprem_id, "note", True)
    assert c.notify_technician is False and c.mark_first_response is False
    notes = await cloud.list_notes("5001")
    assert [n["id"] for n in notes] == [cloud_id]


async def test_note_key_fallback_for_old_onprem(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> None:
    state.add_portal("legacy", "LEGACY-KEY", "onprem", accepted_note_keys=("request_note",))
    state.add_request("legacy", id="9")
    async with SdpClient(server[0].url, "LEGACY-KEY", "onprem", **FAST) as client:
        await client.add_note("9", "first")
        await client.add_note("9", "second")
    assert [n.wrapper_key for n in state.recorded_notes("legacy")] == ["request_note"] * 2
    assert len(state.calls("legacy", "POST")) == 3  # one rejected `note`, then remembered


async def test_update_request_and_worklog(cloud: SdpClient, state: SimulatorState) -> None:
    updated = await cloud.update_request("5001", {"udf_fields": {"udf_char1": "enhanced"}})
    assert updated["udf_fields"] == {"udf_char1": "enhanced"}
    worklog_id = await cloud.add_worklog("5001", "AI triage", minutes=2)
    assert worklog_id.isdigit()
    assert all(c.input_format == "json" for c in state.calls("acme", "PUT"))


async def test_paging_over_250_requests_yields_each_once(
    onprem: SdpClient, state: SimulatorState
) -> None:
    state.add_requests(
        "globex", [{"subject": f"t{i}", "created_time": 1_600_000_000_000 + i} for i in range(249)]
    )
    state.clear_calls()
    ids = [r["id"] async for r in onprem.iter_requests()]
    assert len(ids) == len(set(ids)) == 250
    assert len(state.calls("globex", "GET", "/requests")) == 3
    recent = [
        r
        async for r in onprem.iter_requests(
            {"field": "created_time", "condition": "gte", "value": "1600000000200"},
            row_count=20,
            fields_required=["description"],
        )
    ]
    assert len(recent) == 49 + 1 and all("description" in r for r in recent)
    rows, more = await onprem.list_requests({"row_count": 5, "start_index": 1})
    assert len(rows) == 5 and more is True
    with pytest.raises(ValueError):
        await onprem.list_requests({"row_count": 101})


async def test_retries_429_honouring_retry_after(cloud: SdpClient, state: SimulatorState) -> None:
    state.set_faults("acme", http_429_next=1, retry_after_s=1)
    started = time.monotonic()
    assert (await cloud.get_request("5001"))["id"] == "5001"
    assert time.monotonic() - started >= 0.9
    state.set_faults("acme", http_429_next=2, retry_after_s=0)
    state.clear_calls()
    await cloud.add_note("5001", "after throttling")
    assert [c.status for c in state.calls("acme")] == [429, 429, 200]
    assert len(state.recorded_notes("acme")) == 1


async def test_503_twice_then_success_with_hooks(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> None:
    state.set_faults("acme", http_5xx_next=2, http_5xx_status=503)
    hooked: list[str] = []
    outcomes: list[str] = []

    async def before_call() -> None:
        hooked.append("x")

    async with SdpClient(
        server[0].url,
        CLOUD_KEY,
        "cloud",
        portal="acme",
        **FAST,
        before_call=before_call,
        on_call=lambda outcome, seconds: outcomes.append(outcome),
    ) as client:
        await client.get_request("5001")
    assert outcomes == ["unavailable", "unavailable", "ok"] and len(hooked) == 3


async def test_gives_up_after_max_attempts(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> None:
    state.set_faults("acme", http_5xx_next=10, http_5xx_status=502)
    async with SdpClient(
        server[0].url, CLOUD_KEY, "cloud", portal="acme", max_attempts=3, **FAST
    ) as client:
        with pytest.raises(SdpUnavailable) as caught:
            await client.get_request("5001")
    assert caught.value.http_status == 502 and caught.value.retryable
    assert len(state.calls("acme")) == 3


async def test_rate_limit_window_exhausts_attempts(cloud: SdpClient, state: SimulatorState) -> None:
    state.set_faults("acme", rate_limit_per_minute=1)
    await cloud.get_request("5001")
    with pytest.raises(SdpRateLimited) as caught:
        await cloud.get_request("5001")
    assert caught.value.sdp_code == 4015 and caught.value.retry_after is None
    assert [c.status for c in state.calls("acme")] == [200, 429, 429, 429, 429]


async def test_deadline_stops_before_a_long_retry_after(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> None:
    state.set_faults("acme", http_429_next=5, retry_after_s=5)
    async with SdpClient(
        server[0].url, CLOUD_KEY, "cloud", portal="acme", deadline_s=1.0, **FAST
    ) as client:
        started = time.monotonic()
        with pytest.raises(SdpRateLimited) as caught:
            await client.get_request("5001")
    assert time.monotonic() - started < 0.5 and caught.value.retry_after == 5


async def test_closed_ticket_is_rejected_once(cloud: SdpClient, state: SimulatorState) -> None:
    state.set_request_flags("acme", "5001", reject_notes_reason="Request is closed")
    with pytest.raises(SdpRejected) as caught:
        await cloud.add_note("5001", "too late")
    err = caught.value
    assert err.message == "Request is closed" and not err.retryable
    assert (err.http_status, err.sdp_code) == (200, 4000)
    assert len(state.calls("acme", "POST", "/notes")) == 1
    assert state.recorded_notes() == []


async def test_failed_envelope_fault_is_not_retried(
    cloud: SdpClient, state: SimulatorState
) -> None:
    state.set_faults("acme", failed_envelope_next=1, failed_envelope_message="Try later")
    with pytest.raises(SdpRejected, match="Try later"):
        await cloud.get_request("5001")
    assert len(state.calls("acme")) == 1


async def test_missing_description_and_not_found(cloud: SdpClient) -> None:
    with pytest.raises(SdpRejected) as caught:
        await cloud.add_note("5001", "")
    assert caught.value.sdp_code == 4012 and caught.value.fields == ("description",)
    with pytest.raises(SdpNotFound) as missing:
        await cloud.get_request("nope")
    assert missing.value.sdp_code == 4007 and not missing.value.retryable


async def test_bad_key_is_auth_error_and_key_never_leaks(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> None:
    secret = "WRONG-KEY-d41d8cd98f"
    async with SdpClient(server[0].url, secret, "onprem", **FAST) as client:
        with pytest.raises(SdpAuthError) as caught:
            await client.get_request("42")
        assert secret not in repr(client)
    err = caught.value
    assert (err.http_status, err.sdp_code, err.retryable) == (401, 4022, False)
    assert len(state.calls()) == 1
    for text in (str(err), repr(err), err.message, str(err.args)):
        assert secret not in text


async def test_wrong_edition_header_is_rejected(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> None:
    async with SdpClient(server[0].url, CLOUD_KEY, "onprem", portal="acme", **FAST) as client:
        with pytest.raises(SdpAuthError):
            await client.get_request("5001")


async def test_hang_and_connection_refused_are_unavailable(
    server: tuple[ServerHandle, SimulatorState], state: SimulatorState
) -> None:
    state.set_faults("acme", outage="hang")
    async with SdpClient(
        server[0].url, CLOUD_KEY, "cloud", portal="acme", timeout_s=0.2, max_attempts=2, **FAST
    ) as client:
        started = time.monotonic()
        with pytest.raises(SdpUnavailable, match="ReadTimeout"):
            await client.get_request("5001")
        assert time.monotonic() - started < 2
    state.set_faults("acme")
    async with SdpClient(
        f"http://127.0.0.1:{free_port()}", CLOUD_KEY, "cloud", max_attempts=2, **FAST
    ) as client:
        with pytest.raises(SdpUnavailable) as caught:
            await client.get_request("5001")
    assert CLOUD_KEY not in str(caught.value) and not caught.value.maybe_applied


async def test_plain_html_outage_is_unavailable(cloud: SdpClient, state: SimulatorState) -> None:
    state.set_faults("acme", outage="503")
    with pytest.raises(SdpUnavailable, match="HTTP 503"):
        await cloud.get_request("5001")


async def test_ambiguous_write_is_not_posted_twice(cloud: SdpClient, state: SimulatorState) -> None:
    state.set_faults("acme", http_5xx_next=1, http_5xx_status=500, fail_after_effect=True)
    note_id = await cloud.add_note("5001", "<p>enh-123</p>")
    [recorded] = state.recorded_notes("acme")
    assert recorded.note_id == note_id
    assert len(state.calls("acme", "POST")) == 1


@pytest.mark.parametrize(
    "status,body,error,code",
    [
        (
            200,
            {
                "response_status": [
                    {
                        "status_code": 4000,
                        "status": "failed",
                        "messages": [{"status_code": 4000, "message": "Closed"}],
                    }
                ]
            },
            SdpRejected,
            4000,
        ),
        (
            400,
            {
                "response_status": {
                    "status_code": 4000,
                    "status": "failed",
                    "messages": [{"status_code": 4012, "fields": ["mode"]}],
                }
            },
            SdpRejected,
            4012,
        ),
        (
            401,
            {
                "response_status": {
                    "status_code": 4000,
                    "status": "failed",
                    "messages": [{"status_code": 4002, "message": "UNAUTHORISED"}],
                }
            },
            SdpAuthError,
            4002,
        ),
        (429, {}, SdpRateLimited, None),
        (
            500,
            {
                "response_status": {
                    "status_code": 4000,
                    "status": "failed",
                    "messages": [{"status_code": 4004}],
                }
            },
            SdpUnavailable,
            4004,
        ),
    ],
)
def test_envelope_classification(
    status: int, body: dict[str, object], error: type[SdpError], code: int | None
) -> None:
    response = httpx.Response(status, json=body, headers={"Retry-After": "3"})
    with pytest.raises(error) as caught:
        raise_for_envelope(response, write=True)
    assert caught.value.sdp_code == code
    ok = httpx.Response(200, json={"notes": [], "response_status": [{"status_code": 2000}]})
    assert raise_for_envelope(ok, write=False)["notes"] == []


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480) == 10.0

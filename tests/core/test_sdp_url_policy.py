"""Issue 14 item 4: which SDP addresses the service may call, one case per class of address,
and the transport that re-checks every resolved address when it connects (DNS rebinding)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from core.sdp_url_policy import (
    SdpUrlPolicy,
    SdpUrlRefused,
    check_url_always,
    parse_networks,
)
from core.settings import Settings
from pipeline.sdp.client import SdpClient
from pipeline.sdp.transport import guarded_http_client
from pipeline.sdp.wire import SdpRejected
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.serving import run_in_thread

STRICT = SdpUrlPolicy()
LOOPBACK_OK = SdpUrlPolicy(allow_loopback=True)
ONLY_10_20 = SdpUrlPolicy(allowed_networks=parse_networks(["10.20.0.0/16", "fd00:1::/32"]))

NEVER = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://169.254.0.1",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://user:pass@sdp.example.com/",
    "http://user@10.0.0.1/",
    "ftp://sdp.example.com/",
    "file:///etc/passwd",
]
LOOPBACK = [
    "http://127.0.0.1:5432/",
    "http://127.9.9.9/",
    "http://[::1]:8265/",
    "http://0.0.0.0:8000/",
    "http://localhost:8265",
    "http://ray.localhost/",
    "http://[::ffff:127.0.0.1]/",
]
PRIVATE = [
    "http://10.1.2.3:8080/",
    "http://192.168.0.10/",
    "http://172.16.5.5/",
    "http://100.64.1.1/",
    "http://[fd12::1]/",
]
PUBLIC = ["https://sdpondemand.manageengine.com/", "https://8.8.8.8/", "https://[2606:4700::1]/"]


@pytest.mark.parametrize("url", NEVER)
def test_never_allowed(url: str) -> None:
    for policy in (STRICT, LOOPBACK_OK, ONLY_10_20):
        with pytest.raises(SdpUrlRefused):
            policy.check_url(url)


def test_the_fixed_rules_need_no_settings() -> None:
    for url in NEVER:
        with pytest.raises(SdpUrlRefused):
            check_url_always(url)
    check_url_always("http://127.0.0.1/")  # loopback is the operator's call, not a fixed rule


@pytest.mark.parametrize("url", LOOPBACK)
def test_loopback_only_when_allowed(url: str) -> None:
    with pytest.raises(SdpUrlRefused, match="AI_AGENTS_SDP_ALLOW_LOOPBACK"):
        STRICT.check_url(url)
    with pytest.raises(SdpUrlRefused):
        ONLY_10_20.check_url(url)
    LOOPBACK_OK.check_url(url)


@pytest.mark.parametrize("url", PRIVATE)
def test_private_networks_unless_an_allow_list_excludes_them(url: str) -> None:
    STRICT.check_url(url)
    with pytest.raises(SdpUrlRefused, match="AI_AGENTS_SDP_ALLOWED_NETWORKS"):
        ONLY_10_20.check_url(url)


def test_allow_list_admits_its_own_networks() -> None:
    ONLY_10_20.check_url("http://10.20.30.40:8080/")
    ONLY_10_20.check_url("http://[fd00:1::5]/")
    with pytest.raises(SdpUrlRefused):
        ONLY_10_20.check_url("http://10.21.0.1/")


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_are_allowed(url: str) -> None:
    for policy in (STRICT, LOOPBACK_OK, ONLY_10_20):
        policy.check_url(url)


def test_settings_build_the_policy(monkeypatch) -> None:
    monkeypatch.setenv("AI_AGENTS_SDP_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("AI_AGENTS_SDP_ALLOWED_NETWORKS", "10.20.0.0/16, fd00:1::/32")
    policy = Settings().sdp_url_policy
    assert policy.allow_loopback and len(policy.allowed_networks) == 2
    monkeypatch.setenv("AI_AGENTS_SDP_ALLOWED_NETWORKS", "10.20.0.0/16,not-a-network")
    with pytest.raises(ValueError, match="not-a-network"):
        Settings()
    monkeypatch.delenv("AI_AGENTS_SDP_ALLOW_LOOPBACK")
    monkeypatch.delenv("AI_AGENTS_SDP_ALLOWED_NETWORKS")
    assert Settings().sdp_url_policy == SdpUrlPolicy()


@pytest.fixture
def sdp_simulator():
    state = SimulatorState(seed=3)
    state.add_portal("rebind", "key-1", "onprem")
    with run_in_thread(create_sdp_app(state)) as handle:
        yield handle


@pytest.fixture
async def rebinding_dns(monkeypatch):
    """A name whose DNS answer the test chooses (the attacker's resolver, in effect)."""
    answers: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return answers


async def test_call_time_check_refuses_a_name_that_now_resolves_to_loopback(
    sdp_simulator, rebinding_dns
) -> None:
    rebinding_dns["sdp.rebind.example"] = "127.0.0.1"
    url = f"http://sdp.rebind.example:{sdp_simulator.port}"
    STRICT.check_url(url)  # what the admin API saw: a harmless-looking name
    async with guarded_http_client(STRICT) as http:
        client = SdpClient(
            url, "key-1", "onprem", http=http, max_attempts=4, backoff_initial_s=0.01
        )
        with pytest.raises(SdpRejected, match="loopback") as refused:
            await client.get_request(1)
        assert not refused.value.retryable
    # the same name with loopback allowed reaches the simulator: the transport connected to
    # the address it checked, and the simulator answered (unknown ticket is SDP's own 404)
    async with guarded_http_client(LOOPBACK_OK) as http:
        answer = await http.get(f"{url}/api/v3/requests/1", headers={"authtoken": "key-1"})
        assert answer.status_code in (200, 404)
        assert "response_status" in answer.text


async def test_call_time_check_refuses_link_local_even_with_loopback_allowed(rebinding_dns) -> None:
    rebinding_dns["metadata.rebind.example"] = "169.254.169.254"
    async with guarded_http_client(LOOPBACK_OK) as http:
        with pytest.raises(SdpUrlRefused, match="link-local"):
            await http.get("http://metadata.rebind.example/latest/meta-data/")


async def test_unresolvable_name_is_an_ordinary_connect_error() -> None:
    import httpx

    async with guarded_http_client(STRICT) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("http://no-such-host.invalid/", timeout=5)


async def test_stored_url_with_credentials_fails_its_calls_at_once(sdp_simulator) -> None:
    """A tenant row written before the rules (or by hand) with user:pass@ in its URL."""
    url = f"http://admin:s3cret@127.0.0.1:{sdp_simulator.port}"
    async with SdpClient(url, "key-1", "onprem", max_attempts=4, backoff_initial_s=0.01) as client:
        with pytest.raises(SdpRejected, match="credentials") as refused:
            await client.get_request(1)
    assert not refused.value.retryable and "s3cret" not in str(refused.value)

"""Item: a technician clicks a feedback link in a note and confirms it, in a real browser.

Real parts throughout: the enhancement workflow (no Ray) writes the note into the SDP
simulator over HTTP; the FastAPI app runs under uvicorn on loopback against the session's
PostgreSQL as the service role; headless Chromium opens the note as SDP would render it,
clicks a link, types a comment and confirms; the result is read back through the tenant
API. Tampered, expired and cross-tenant tokens get a clear 4xx page and record nothing.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest

from core.settings import Settings
from pipeline.note.feedback_links import FeedbackLinkSigner, derive_link_keys
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.serving import ServerHandle, run_in_thread
from tests.browser.webdriver import Browser, browser_available
from tests.workflow_runner import enhance_once

pytestmark = pytest.mark.skipif(not browser_available(), reason="chromium/chromedriver missing")

TICKET = {
    "subject": "VPN drops every few minutes",
    "description": "The VPN client disconnects every few minutes for the sales team.",
}


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v for k, v in attrs if tag == "a" and k == "href" and v]


@pytest.fixture(scope="module")
def sdp() -> Iterator[tuple[SimulatorState, str]]:
    state = SimulatorState()
    with run_in_thread(create_sdp_app(state)) as server:
        yield state, server.url


METRICS_TOKEN = "met_browser-test"


@pytest.fixture(scope="module")
def api(database, encryption_keys) -> Iterator[ServerHandle]:
    settings = Settings(
        database_url=database.service_url,
        encryption_keys=encryption_keys,
        feedback_link_rate_per_minute=600,
        metrics_token=METRICS_TOKEN,
    )
    state = ApiState.from_settings(settings)
    app = create_api(state)
    app.router.on_shutdown.append(state.close)
    with run_in_thread(app) as server:
        yield server


async def _enhance(
    pool, cipher, owner_conn, encryption_keys, sdp, public_url: str, tenant_id: str
) -> tuple[str, str]:
    enhancement_id, _, note_html = await enhance_once(
        pool,
        cipher,
        owner_conn,
        sdp[0],
        tenant_id,
        TICKET,
        encryption_keys=encryption_keys,
        public_url=public_url,
    )
    return enhancement_id, note_html


def _feedback(api_url: str, api_token: str) -> list[dict]:
    response = httpx.get(
        f"{api_url}/api/v1/feedback", headers={"Authorization": f"Bearer {api_token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_technician_confirms_a_rating_with_a_comment_in_chromium(
    pool, cipher, owner_conn, encryption_keys, make_tenant, sdp, api
) -> None:
    tenant = await make_tenant("fb", sdp_url=sdp[1])
    enhancement_id, note_html = await _enhance(
        pool, cipher, owner_conn, encryption_keys, sdp, api.url, tenant.tenant_id
    )
    anchors = _Anchors()
    anchors.feed(note_html)
    links = [h for h in anchors.hrefs if h.startswith(f"{api.url}/f/")]
    assert len(links) == 7, note_html  # 👍, 👎, 1..5

    with Browser() as browser:
        # the note as SDP renders it; the technician clicks "4"
        browser.open("data:text/html;charset=utf-8," + urllib.parse.quote(note_html))
        browser.click(browser.find("4", using="link text"))
        answer = browser.text(browser.wait_for("#answer"))
        assert answer == "Rating 4/5"
        assert _feedback(api.url, tenant.api_token) == []  # opening the page records nothing
        browser.type(browser.find("#comment"), "Spot on, the DPD fix worked")
        browser.click(browser.find("#confirm"))
        assert "recorded" in browser.text(browser.wait_for("#thanks"))

        [row] = _feedback(api.url, tenant.api_token)
        assert (
            row["enhancement_id"],
            row["feedback_type"],
            row["rating_value"],
            row["comment"],
        ) == (enhancement_id, "rating", 4, "Spot on, the DPD fix worked")

        # the same link again: the page says so, and confirming updates the one row
        browser.open(links[5])
        assert "Already recorded for this note: Rating 4/5" in browser.text(browser.find("body"))
        browser.type(browser.find("#comment"), "Changed my mind")
        browser.click(browser.find("#confirm"))
        assert "updated" in browser.text(browser.wait_for("#thanks"))
        # a thumbs-up is a separate vote on the same note
        browser.open(links[0])
        browser.click(browser.wait_for("#confirm"))
        browser.wait_for("#thanks")

    _check_totals(api.url, tenant.tenant_id, tenant.api_token)


def _check_totals(api_url: str, tenant_id: str, api_token: str) -> None:
    """Two votes on one note, as the feedback API, its stats and /metrics see them."""
    rows = _feedback(api_url, api_token)
    assert sorted((r["feedback_type"], r["rating_value"], r["comment"]) for r in rows) == [
        ("rating", 4, "Changed my mind"),
        ("thumbs_up", None, None),
    ]
    stats = httpx.get(
        f"{api_url}/api/v1/feedback/stats", headers={"Authorization": f"Bearer {api_token}"}
    ).json()
    assert (stats["total_feedback"], stats["average_rating"], stats["positive_percentage"]) == (
        2,
        4.0,
        100.0,
    )
    metrics = httpx.get(
        f"{api_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ).text
    assert f'ai_agents_feedback_average_rating{{tenant="{tenant_id}"}} 4.0' in metrics


async def test_tampered_expired_and_cross_tenant_links_are_refused_and_record_nothing(
    pool, cipher, owner_conn, encryption_keys, make_tenant, sdp, api
) -> None:
    victim = await make_tenant("fbv", sdp_url=sdp[1])
    other = await make_tenant("fbo", sdp_url=sdp[1])
    enhancement_id, note_html = await _enhance(
        pool, cipher, owner_conn, encryption_keys, sdp, api.url, victim.tenant_id
    )
    anchors = _Anchors()
    anchors.feed(note_html)
    genuine = next(h for h in anchors.hrefs if "/f/" in h).rsplit("/f/", 1)[1]
    keys = derive_link_keys(encryption_keys)
    signer = FeedbackLinkSigner(keys)
    past = FeedbackLinkSigner(keys, clock=lambda: time.time() - 40 * 86400)
    head, sig = genuine.rsplit(".", 1)
    cases = {
        "tampered": (head.replace(".up.", ".down.") + "." + sig, 403, "not valid"),
        "expired": (past.token(victim.tenant_id, enhancement_id, "up"), 410, "expired"),
        "cross-tenant": (signer.token(other.tenant_id, enhancement_id, "up"), 404, "not known"),
        "garbage": ("not-a-token", 400, "malformed"),
    }
    _check_refusals(api.url, cases)
    assert _feedback(api.url, victim.api_token) == []
    assert _feedback(api.url, other.api_token) == []
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM enhancement_feedback WHERE enhancement_id = $1",
            uuid.UUID(enhancement_id),
        )
        == 0
    )


def _check_refusals(api_url: str, cases: dict[str, tuple[str, int, str]]) -> None:
    """Each bad token: the same clear 4xx on GET and POST, as HTML or JSON, in the browser."""
    with Browser() as browser:
        for name, (token, status, words) in cases.items():
            url = f"{api_url}/f/{token}"
            assert httpx.get(url).status_code == status, name
            posted = httpx.post(url, data={"comment": "x"})
            assert posted.status_code == status, name
            assert posted.headers["content-type"].startswith("text/html")
            as_json = httpx.post(url, headers={"Accept": "application/json"})
            assert as_json.status_code == status and words in as_json.json()["detail"], name
            browser.open(url)
            assert words in browser.text(browser.find("#reason")), name
            assert "Nothing was recorded" in browser.text(browser.find("body"))


async def test_feedback_links_are_rate_limited_per_client(database, encryption_keys) -> None:
    settings = Settings(
        database_url=database.service_url,
        encryption_keys=encryption_keys,
        feedback_link_rate_per_minute=6,
    )  # a burst of one
    app = create_api(ApiState.from_settings(settings))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://api"
    ) as client:
        statuses = [(await client.get("/f/not-a-token")).status_code for _ in range(3)]
    assert statuses[0] == 400 and statuses[1:] == [429, 429]


async def test_a_disabled_tenants_links_stop_working(
    database, encryption_keys, make_tenant, tenant_admin, pool, cipher, owner_conn, sdp
) -> None:
    tenant = await make_tenant("fbd", sdp_url=sdp[1])
    enhancement_id, _ = await _enhance(
        pool, cipher, owner_conn, encryption_keys, sdp, "https://ai.example.com", tenant.tenant_id
    )
    token = FeedbackLinkSigner(derive_link_keys(encryption_keys)).token(
        tenant.tenant_id, enhancement_id, "up"
    )
    app = create_api(
        ApiState.from_settings(
            Settings(database_url=database.service_url, encryption_keys=encryption_keys)
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://api"
    ) as client:
        assert (await client.get(f"/f/{token}")).status_code == 200
        await tenant_admin.disable(tenant.tenant_id, actor="test")
        refused = await client.post(f"/f/{token}", headers={"Accept": "application/json"})
    assert refused.status_code == 403 and "no longer accepted" in refused.json()["detail"]
    assert (
        await owner_conn.fetchval(
            "SELECT count(*) FROM enhancement_feedback WHERE enhancement_id = $1",
            uuid.UUID(enhancement_id),
        )
        == 0
    )

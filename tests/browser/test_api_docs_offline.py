"""`/docs` renders in headless Chromium from this service alone: every script,
style, image and the OpenAPI document come from its own origin (the assets ship in the
installed package), so the pages work offline and run no third party's code next to the
tokens pasted into Authorize. The app runs under uvicorn on loopback against the session's
PostgreSQL; this machine has no route to a CDN, so a page that needed one would stay blank."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.serving import ServerHandle, run_in_thread
from tests.browser.webdriver import Browser, browser_available
from tests.ray_free_api import ray_free_settings

pytestmark = pytest.mark.skipif(not browser_available(), reason="chromium/chromedriver missing")

RESOURCES = "return performance.getEntriesByType('resource').map(e => e.name)"


@pytest.fixture(scope="module")
def api(database, encryption_keys, data_dir) -> Iterator[ServerHandle]:
    state = ApiState.from_settings(ray_free_settings(database, encryption_keys, data_dir))
    with run_in_thread(create_api(state), lifespan="off") as server:
        yield server


def test_swagger_ui_renders_every_operation_from_this_origin_only(api: ServerHandle) -> None:
    with Browser() as browser:
        browser.open(f"{api.url}/docs")
        browser.wait_for(".opblock", timeout_s=30)
        operations = browser.execute("return document.querySelectorAll('.opblock').length")
        assert operations >= 17, operations  # every route of the OpenAPI document
        title = browser.text(browser.find(".information-container .title"))
        assert title.startswith("AI Agents"), title
        assert browser.execute("return document.querySelector('.auth-wrapper') !== null")
        loaded = browser.execute(RESOURCES)
    assert any(name.endswith("/docs/assets/swagger-ui-bundle.js") for name in loaded), loaded
    assert any(name.endswith("/openapi.json") for name in loaded), loaded
    assert all(name.startswith(api.url) for name in loaded), loaded

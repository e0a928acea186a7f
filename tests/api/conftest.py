"""tests/api: the HTTP contract without Ray, against the session's real PostgreSQL.

Most tests use the shared ``api_client`` (the app in-process over ASGI, tests/conftest.py). The
few that need a real socket — schemathesis run as a separate process, hypothesis driving a
synchronous client — use ``bare_server`` / ``served_api``: the same app under real uvicorn in a
thread, which starts in a second instead of the half minute a Serve stack takes on two cores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from db.embedded import EmbeddedDatabase
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.serving import ServerHandle, run_in_thread
from tests.ray_free_api import RayFreeApi, ray_free_settings


@pytest.fixture(scope="module")
def bare_server(
    database: EmbeddedDatabase, encryption_keys: str, data_dir: Path
) -> Iterator[tuple[ServerHandle, str, FastAPI]]:
    settings = ray_free_settings(database, encryption_keys, data_dir)
    assert settings.admin_token is not None
    app = create_api(ApiState.from_settings(settings, directory_ttl_s=0.0))
    handle = run_in_thread(app, lifespan="off")
    yield handle, settings.admin_token.get_secret_value(), app
    handle.stop()


@pytest.fixture
async def served_api(bare_server: tuple[ServerHandle, str, FastAPI]) -> AsyncIterator[RayFreeApi]:
    """``api_client``'s helpers, but over loopback HTTP to ``bare_server``."""
    handle, admin_token, app = bare_server
    async with httpx.AsyncClient(timeout=30) as http:
        yield RayFreeApi(app, admin_token, http, url=handle.url)

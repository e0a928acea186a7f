"""Session-wide real components: one embedded PostgreSQL, migrated, a service-role pool, and
the HTTP app without Ray over ASGI (`api_client`).

Every test talks to a real database as the restricted service role; nothing of ours is mocked.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from core.sdp_url_policy import SdpUrlPolicy
from db.embedded import EmbeddedDatabase, start_embedded
from db.migrate import migrate
from db.pool import create_pool
from pipeline.tenancy.admin import TenantAdmin, TenantCreate, TenantCredentials
from pipeline.tenancy.credential_cipher import CredentialCipher, new_encryption_key
from tests import lanes
from tests.ray_free_api import RayFreeApi, ray_free_api

warnings.filterwarnings("ignore", module="platformdirs")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    # Short path: the Postgres Unix socket lives here and socket paths are limited to 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="aat-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
async def database(data_dir: Path) -> EmbeddedDatabase:
    db = start_embedded(data_dir, stop_on_exit=True)
    await migrate(db.owner_url, db.service_url)
    return db


@pytest.fixture(scope="session")
async def pool(database: EmbeddedDatabase) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database.service_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def owner_conn(database: EmbeddedDatabase) -> AsyncIterator[asyncpg.Connection]:
    """Only for test set-up/inspection that the service role must not be able to do."""
    conn = await asyncpg.connect(database.owner_url)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def encryption_keys() -> str:
    return new_encryption_key()


@pytest.fixture(scope="session")
def cipher(encryption_keys: str) -> CredentialCipher:
    return CredentialCipher.from_csv(encryption_keys)


@pytest.fixture(scope="session")
def tenant_admin(pool: asyncpg.Pool, cipher: CredentialCipher) -> TenantAdmin:
    # the SDP simulators of these tests listen on loopback, which the default policy refuses
    return TenantAdmin(pool, cipher, url_policy=SdpUrlPolicy(allow_loopback=True))


MakeTenant = Callable[..., Awaitable[TenantCredentials]]


@pytest.fixture(scope="session")
def make_tenant(tenant_admin: TenantAdmin) -> MakeTenant:
    async def factory(prefix: str = "t", **fields: object) -> TenantCredentials:
        spec = {
            "id": f"{prefix}-{uuid.uuid4().hex[:8]}",
            "sdp_url": "http://127.0.0.1:9",
            "sdp_key": "sdp-key-" + uuid.uuid4().hex,
            **fields,
        }
        return await tenant_admin.create(TenantCreate(**spec), actor="test")

    return factory


@pytest.fixture(scope="module")
def cli_env(data_dir: Path) -> dict[str, str]:
    """Environment for the real `ai-agents` executable: the session's embedded database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    env["AI_AGENTS_DATA_DIR"] = str(data_dir)
    env["AI_AGENTS_SDP_ALLOW_LOOPBACK"] = "true"  # tenants point at loopback SDP simulators
    return env


@pytest.fixture(scope="module")
async def api_client(
    database: EmbeddedDatabase, encryption_keys: str, data_dir: Path
) -> AsyncIterator[RayFreeApi]:
    """The FastAPI app without Ray, in-process over ASGI, on the session's real PostgreSQL; one
    app (and database pool) per test module. Tenants live in the shared session database, so
    tests create their own (``api_client.tenant(...)``) and look only at those."""
    async with ray_free_api(database, encryption_keys, data_dir) as api:
        yield api


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Lanes by the `ray` marker, which everything relies on (`tests/lanes.py`):

    - the fast lane (`-m "not ray"`) must not start Ray, so a test that uses the integration
      suite's Ray session (`system`) without the marker is refused here;
    - `python -m pytest` runs the lanes side by side (`-n 3 --dist loadgroup`): each lane is one
      xdist group, so one worker runs the Ray lane in collection order (the integration
      session last), one the Ray side lane, one the Ray-free lane, then the hosts lane. Each
      worker is its own session with its own embedded PostgreSQL, so the integration session's
      dispatcher never sees the jobs the Ray-free tests leave queued.
    """
    for item in items:
        is_ray = item.get_closest_marker("ray") is not None
        if "system" in getattr(item, "fixturenames", ()) and not is_ray:
            raise pytest.UsageError(
                f"{item.nodeid} uses the Ray session (`system`) but is not marked "
                "`pytest.mark.ray` (add `pytestmark = pytest.mark.ray` to its module)"
            )
        group = item.get_closest_marker("xdist_group")
        if group is None:
            item.add_marker(pytest.mark.xdist_group(lanes.RAY if is_ray else lanes.RAY_FREE))
        elif group.args[0] in lanes.LATE and not is_ray:
            raise pytest.UsageError(f"{item.nodeid} is in a Ray lane but not marked `ray`")
    # The late lanes last: xdist hands out groups in the order they first appear, and gives a
    # worker its next group when it is almost done with its current one.
    items.sort(key=lambda item: item.get_closest_marker("xdist_group").args[0] in lanes.LATE)

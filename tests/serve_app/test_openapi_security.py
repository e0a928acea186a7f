"""The OpenAPI document declares how each route authenticates (tenant and admin bearer tokens,
the webhook headers), so `/docs` offers Authorize and generated clients know the auth; it is a
valid OpenAPI document (openapi-spec-validator) with the package's version. Served by the real
app over loopback; declaring the schemes changed no answer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openapi_spec_validator import validate

from pipeline.core.settings import Settings
from pipeline.core.version import package_version
from pipeline.credential_cipher import new_secret
from serve_app.api import create_api
from serve_app.api_state import ApiState
from simulators.serving import run_in_thread

ADMIN_TOKEN = new_secret("adm_")


@pytest.fixture(scope="module")
def api_url(database, encryption_keys) -> Iterator[str]:
    settings = Settings(
        database_url=database.service_url, encryption_keys=encryption_keys, admin_token=ADMIN_TOKEN
    )
    with run_in_thread(create_api(ApiState.from_settings(settings))) as handle:
        yield handle.url


@pytest.fixture(scope="module")
def document(api_url: str) -> dict:
    return httpx.get(f"{api_url}/openapi.json", timeout=10).json()


def test_document_is_valid_openapi_with_the_package_version(document: dict) -> None:
    validate(document)
    assert document["info"]["version"] == package_version()


def test_every_route_names_its_scheme(document: dict) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["TenantToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["TenantToken"]["description"],
    }
    assert schemes["AdminToken"]["scheme"] == "bearer"
    assert {
        schemes[name]["name"] for name in ("WebhookSignature", "WebhookTimestamp", "WebhookToken")
    } == {"X-Signature", "X-Timestamp", "X-Webhook-Token"}
    seen = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            security = operation.get("security")
            if path.startswith("/api/v1/") and path != "/api/v1/ready":
                assert security == [{"TenantToken": []}], (method, path)
            elif path.startswith("/admin/"):
                assert security == [{"AdminToken": []}], (method, path)
            elif path.startswith("/webhook/"):
                assert security == [
                    {"WebhookSignature": [], "WebhookTimestamp": []},
                    {"WebhookToken": []},
                ], (method, path)
            else:
                assert security is None, (method, path)  # health, readiness, metrics
            seen.add(path.split("/")[1])
    assert {"api", "admin", "webhook", "health"} <= seen


def test_docs_page_is_served(api_url: str) -> None:
    page = httpx.get(f"{api_url}/docs", timeout=10)
    assert page.status_code == 200 and "swagger-ui" in page.text


async def test_answers_are_unchanged_by_the_declared_schemes(api_url: str, make_tenant) -> None:
    creds = await make_tenant("oas")
    url = f"{api_url}/api/v1/enhancements"
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.get(url)
        assert missing.status_code == 401
        assert missing.json() == {"detail": "Missing bearer token"}
        assert missing.headers["www-authenticate"] == "Bearer"
        assert (await http.get(url, headers={"Authorization": "Basic eDp5"})).status_code == 401
        assert (await http.get(url, headers={"Authorization": "Bearer nope"})).status_code == 403
        tenant = {"Authorization": f"Bearer {creds.api_token}"}
        assert (await http.get(url, headers=tenant)).status_code == 200
        admin_url = f"{api_url}/admin/tenants"
        assert (await http.get(admin_url, headers=tenant)).status_code == 403
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert (await http.get(admin_url, headers=admin)).status_code == 200

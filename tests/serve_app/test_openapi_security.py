"""The OpenAPI document declares how each route authenticates (tenant and admin bearer tokens,
the webhook headers), so `/docs` offers Authorize and generated clients know the auth; it is a
valid OpenAPI document (openapi-spec-validator) with the package's version. Served by the real
app (without Ray, in-process over ASGI); declaring the schemes changed no answer."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from core.version import package_version
from tests.ray_free_api import RayFreeApi


@pytest.fixture(scope="module")
async def document(api_client: RayFreeApi) -> dict:
    return (await api_client.http.get("/openapi.json")).json()


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
            if path == "/api/v1/usage":  # a tenant its own, the admin every tenant's
                assert security == [{"TenantToken": []}, {"AdminToken": []}], (method, path)
            elif path.startswith("/api/v1/") and path != "/api/v1/ready":
                assert security == [{"TenantToken": []}], (method, path)
            elif path.startswith("/admin/"):
                assert security == [{"AdminToken": []}], (method, path)
            elif path.startswith("/webhook/"):
                assert security == [
                    {"WebhookSignature": [], "WebhookTimestamp": []},
                    {"WebhookToken": []},
                ], (method, path)
            elif path == "/metrics":
                assert security == [{"MetricsToken": []}], (method, path)
            elif path == "/api/v1/ready":  # open for a load balancer; details with a token
                assert security == [{}, {"MetricsToken": []}, {"AdminToken": []}], (method, path)
            else:
                assert security is None, (method, path)  # liveness
            seen.add(path.split("/")[1])
    assert {"api", "admin", "webhook", "health"} <= seen


async def test_docs_page_is_served(api_client: RayFreeApi) -> None:
    page = await api_client.http.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text


async def test_answers_are_unchanged_by_the_declared_schemes(
    api_client: RayFreeApi, make_tenant
) -> None:
    creds = await make_tenant("oas")
    url = "/api/v1/enhancements"
    http = api_client.http
    missing = await http.get(url)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Missing bearer token"}
    assert missing.headers["www-authenticate"] == "Bearer"
    assert (await http.get(url, headers={"Authorization": "Basic eDp5"})).status_code == 401
    assert (await http.get(url, headers={"Authorization": "Bearer nope"})).status_code == 403
    tenant = {"Authorization": f"Bearer {creds.api_token}"}
    assert (await http.get(url, headers=tenant)).status_code == 200
    admin_url = "/admin/tenants"
    assert (await http.get(admin_url, headers=tenant)).status_code == 403
    assert (await http.get(admin_url, headers=api_client.admin)).status_code == 200

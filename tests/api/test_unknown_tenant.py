"""One "unknown tenant" error (``db.repositories.tenants.UnknownTenant``) behind every admin
route: each answers exactly the 404 body it always did."""

from __future__ import annotations

import pytest

ROUTES = [
    ("PATCH", "", {"name": "x"}),
    ("POST", "/disable", None),
    ("POST", "/rotate-secret", None),
    ("POST", "/rotate-token", None),
    ("POST", "/erase-requester", {"email": "dana@client.example"}),
]


@pytest.mark.parametrize(("method", "suffix", "body"), ROUTES)
async def test_admin_routes_answer_404_for_an_unknown_tenant(
    api_client, method, suffix, body
) -> None:
    answer = await api_client.http.request(
        method,
        f"{api_client.url}/admin/tenants/no-such-tenant{suffix}",
        headers=api_client.admin,
        json=body,
    )
    assert answer.status_code == 404, answer.text
    assert answer.json() == {"detail": "Unknown tenant 'no-such-tenant'"}

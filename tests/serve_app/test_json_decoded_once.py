"""A webhook's JSON body is decoded once: the request guard's value (checked under the input
rules) is the one the route maps, never the value of other bytes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from serve_app.guards import input_rules, request_guard
from serve_app.guards.input_rules import DECODED_JSON_KEY, remember_json, request_json


def _body() -> bytes:
    ticket = f"J-{uuid.uuid4().hex[:8]}"
    return json.dumps({"request": {"id": ticket, "subject": "VPN down"}}).encode()


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body ``decode_json`` decodes, wherever it is called from (a spy: the decoder
    itself still runs)."""
    seen: list[bytes] = []
    real = input_rules.decode_json

    def counting(body: bytes) -> Any:
        seen.append(body)
        return real(body)

    monkeypatch.setattr(input_rules, "decode_json", counting)
    monkeypatch.setattr(request_guard, "decode_json", counting)
    return seen


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
async def test_a_webhook_body_is_decoded_once(api_client, decodes, content_type):
    """JSON: the guard decodes and the route reuses; another type: the guard leaves the body
    alone and the route decodes it (SDP's custom actions do not always declare JSON)."""
    tenant = await api_client.tenant("once", mode="token")
    body = _body()
    decodes.clear()  # the tenant's creation
    answer = await api_client.webhook(tenant, body, content_type=content_type)
    assert answer.status_code == 202, answer.text
    assert decodes == [body]


def test_a_remembered_value_serves_only_the_same_bytes():
    scope: dict[str, Any] = {}
    body = _body()
    remember_json(scope, body, {"request": {"id": "remembered"}})
    assert request_json(scope, body) == {"request": {"id": "remembered"}}
    other = _body()
    assert request_json(scope, other) == json.loads(other)
    assert request_json({}, body) == json.loads(body)
    assert DECODED_JSON_KEY in scope

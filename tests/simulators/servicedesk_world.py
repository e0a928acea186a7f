"""The two tenants, keys and ticket every SDP simulator test starts from, and the two wire
shapes those tests keep writing: the `input_data` form field and SDP's failed envelope.

Shared by the API, fault and control test modules (their fixtures are in ``conftest.py``) so
all three exercise the same portals and a change to the seed lands in one place.
"""

from __future__ import annotations

import json
from typing import Any

CLOUD_KEY, ONPREM_KEY = "1000.acme-oauth-token-abc", "9F2C-ONPREM-GLOBEX-KEY"
CLOUD = {"Authorization": f"Zoho-oauthtoken {CLOUD_KEY}"}
ONPREM = {"authtoken": ONPREM_KEY}
ACME = "/app/acme/api/v3"
# Modelled on the real Cloud GET sample (SDP Cloud v3), with our own data.
VPN_TICKET = {
    "id": "123640000000240013",
    "display_id": "102",
    "subject": "VPN drops every 10 minutes",
    "description": "<div>User at 10.20.30.40 loses the tunnel.</div>",
    "status": {"name": "Open"},
    "priority": {"name": "High", "color": "#ff0000"},
    "requester": {
        "id": "123640000000244019",
        "name": "Dana Whitfield",
        "email_id": "dana@acme.example",
    },
    "technician": None,
    "group": {"name": "Network"},
    "mode": {"name": "E-Mail"},
    "created_time": {"value": "1593000300533"},
    "udf_fields": {"udf_char1": "Branch 4"},
}


def form(obj: Any) -> dict[str, str]:
    return {"input_data": obj if isinstance(obj, str) else json.dumps(obj)}


def inner(body: dict[str, Any]) -> dict[str, Any]:
    status = body["response_status"]
    status = status[0] if isinstance(status, list) else status
    assert status["status_code"] == 4000 and status["status"] == "failed"
    return status["messages"][0]

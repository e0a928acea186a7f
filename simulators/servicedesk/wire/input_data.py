"""Reading SDP's `input_data` parameter the way the real servlet does.

SDP takes writes as a form field `input_data=<JSON>` (form-urlencoded or multipart), and list
parameters in the query string; a JSON request body is simply invisible to it, so it answers
"input_data is required". Integrations in the wild send `str(python_dict)` and SDP tolerates
that, so we parse it too — but record which form arrived, so a test can insist that our own
client sends real JSON.
"""

from __future__ import annotations

import ast
import json
from typing import Any, Literal

from starlette.datastructures import UploadFile
from starlette.requests import Request

from .envelopes import bad_input, input_data_required

InputFormat = Literal["json", "python_repr", "none"]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def parse_input_data(raw: str) -> tuple[dict[str, Any], InputFormat]:
    """Parse the parameter text into a dict; anything else is SDP's 400/4000."""
    try:
        value: Any = json.loads(raw)
        fmt: InputFormat = "json"
    except ValueError:
        try:
            value = ast.literal_eval(raw)
            fmt = "python_repr"
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            raise bad_input("Invalid input_data: not valid JSON", field="input_data") from None
    if not isinstance(value, dict):
        raise bad_input("Invalid input_data: expected a JSON object", field="input_data")
    return value, fmt


async def read_input_data(
    request: Request, *, required: bool
) -> tuple[dict[str, Any] | None, InputFormat]:
    """Find `input_data` in the form body (writes) or the query string, as the servlet would."""
    raw: str | None = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT") and content_type in FORM_TYPES:
        try:
            form = await request.form()
        except Exception:  # malformed multipart: SDP answers with its generic failure
            raise bad_input("Invalid request body") from None
        value = form.get("input_data")
        if isinstance(value, UploadFile):
            raw = (await value.read()).decode("utf-8", errors="replace")
        elif value is not None:
            raw = str(value)
    if raw is None:
        raw = request.query_params.get("input_data")
    if raw is None or raw.strip() == "":
        if required:
            raise input_data_required()
        return None, "none"
    return parse_input_data(raw)


def single_wrapper(data: dict[str, Any], allowed: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """Return the one wrapper key (`request`, `note`, ...) and its object, or 400/4000."""
    keys = [key for key in data if key in allowed]
    unknown = [key for key in data if key not in allowed]
    if unknown:
        raise bad_input(f"Invalid input_data: unexpected key '{unknown[0]}'", field=unknown[0])
    if len(keys) != 1:
        raise bad_input(f"Invalid input_data: expected exactly one of {', '.join(allowed)}")
    key = keys[0]
    body = data[key]
    if not isinstance(body, dict):
        raise bad_input(f"Invalid input_data: '{key}' must be an object", field=key)
    return key, body

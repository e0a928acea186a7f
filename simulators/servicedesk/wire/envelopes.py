"""SDP's `response_status` envelopes, success and failure, in both of their shapes.

Real SDP answers single-record calls with `response_status` as an object and list calls with an
array, and sometimes reports a failure with HTTP 200. Clients that assume one shape break on
the other, so the simulator produces each shape exactly where SDP does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

SUCCESS: dict[str, Any] = {"status_code": 2000, "status": "success"}


class SdpHttpError(Exception):
    """Raised inside the simulator to answer with SDP's failure envelope.

    `code` is the specific code that goes inside `messages[]`; the outer `status_code` is
    always 4000, as in real responses. `as_list` forces the array form (the HTTP-200
    "Request is closed" quirk is observed as an array even on a single-record call).
    `plain_text` replaces the envelope with a non-JSON body, as a proxy in front of SDP sends.
    """

    def __init__(
        self,
        http_status: int,
        code: int,
        message: str | None = None,
        *,
        fields: list[str] | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        as_list: bool = False,
        plain_text: str | None = None,
    ) -> None:
        super().__init__(message or str(code))
        self.http_status = http_status
        self.code = code
        self.message = message
        self.fields = fields
        self.field = field
        self.headers = dict(headers or {})
        self.as_list = as_list
        self.plain_text = plain_text

    def message_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"status_code": self.code, "type": "failed"}
        if self.message is not None:
            entry["message"] = self.message
        if self.field is not None:
            entry["field"] = self.field
        if self.fields is not None:
            entry["fields"] = list(self.fields)
        return entry

    def body(self, list_call: bool) -> dict[str, Any]:
        status = {"status_code": 4000, "status": "failed", "messages": [self.message_entry()]}
        return {"response_status": [status] if (list_call or self.as_list) else status}

    def to_response(self, list_call: bool) -> Response:
        if self.plain_text is not None:
            return PlainTextResponse(
                self.plain_text,
                status_code=self.http_status,
                headers=self.headers,
                media_type="text/html",
            )
        return JSONResponse(
            self.body(list_call), status_code=self.http_status, headers=self.headers
        )


def success(payload: Mapping[str, Any], *, list_call: bool = False) -> JSONResponse:
    body = dict(payload)
    body["response_status"] = [dict(SUCCESS)] if list_call else dict(SUCCESS)
    return JSONResponse(body)


def invalid_key() -> SdpHttpError:
    return SdpHttpError(401, 4022, "Invalid API key.")


def not_found(what: str = "resource") -> SdpHttpError:
    return SdpHttpError(404, 4007, f"Invalid URL or {what} not found")


def bad_input(message: str, *, field: str | None = None) -> SdpHttpError:
    return SdpHttpError(400, 4000, message, field=field)


def input_data_required() -> SdpHttpError:
    return SdpHttpError(400, 4000, "input_data is required", field="input_data")


def mandatory_missing(*names: str) -> SdpHttpError:
    return SdpHttpError(400, 4012, None, fields=list(names))

"""The rules every piece of client input obeys, in one place, for every route.

A body is read with a hard size cap before anything parses it (413 as soon as it is known to be
too large). PostgreSQL cannot store a NUL character, and Python's JSON decoder produces strings
with lone UTF-16 surrogates, integers of thousands of digits and structures nested until the
decoder's recursion limit; none of that may reach the database or a response model as a 500. The
rules, applied to JSON bodies, query parameters and path parameters alike: a NUL or a lone
surrogate anywhere is a 422 naming the field (nothing is silently stripped, so a sender's bug
stays visible); JSON that is not UTF-8, nested deeper than ``MAX_JSON_DEPTH``, carries an
integer outside 64 bits or a non-finite number is a 400. Form bodies
(``application/x-www-form-urlencoded``, the feedback page's) obey the same text rule after
percent-decoding (``%00`` is a NUL), and one that is not UTF-8 or holds more than
``MAX_FORM_FIELDS`` fields is a 400. Dates must be representable in UTC (years 1-9999 after
conversion), else 422.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request
from pydantic import AfterValidator

from pipeline.text.storable import text_problem

MAX_JSON_DEPTH = 64
MAX_FORM_FIELDS = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# A decoded string can only hold NUL or a lone surrogate if the JSON text has a \u escape
# for one (raw NUL is not allowed in a JSON string; a raw surrogate is not UTF-8).
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class BadInput(Exception):
    """Input refused before any route sees it; ``detail`` is the JSON error body's detail."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status_code = status_code
        self.detail = detail


def _utc_representable(value: datetime) -> datetime:
    try:
        if value.tzinfo is not None:
            value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            "date out of range: it must lie between 0001-01-01 and 9999-12-31 UTC"
        ) from None
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc_representable)]
"""A datetime that survives conversion to UTC (``0001-01-01T00:00:00+14:00`` does not)."""


def check_datetime(value: datetime | None, loc: list[str]) -> None:
    """For dates that reach us outside a pydantic field (the webhook mapper's output)."""
    if value is None:
        return
    try:
        _utc_representable(value)
    except ValueError as exc:
        raise BadInput(422, [{"loc": loc, "msg": str(exc), "type": "datetime_range"}]) from None


def unicode_error(loc: list[Any], problem: str) -> BadInput:
    return BadInput(422, [{"loc": loc, "msg": problem, "type": "string_unicode"}])


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int64(digits: str) -> int:
    value = int(digits) if len(digits) <= 20 else INT64_MAX + 1
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError("integer out of range (integers must fit in 64 bits)")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def decode_json(body: bytes) -> Any:
    """``json.loads`` with every refusal a client error: 400 for what is not acceptable JSON,
    422 (with the field's location) for text that cannot be stored."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(400, "Malformed JSON: the body is not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_no_constants, parse_int=_int64, parse_float=_finite)
    except RecursionError:
        raise BadInput(400, f"Malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise BadInput(400, f"Malformed JSON: {exc.msg} at position {exc.pos}") from None
    except ValueError as exc:  # integers beyond 64 bits, 1e999, NaN/Infinity
        raise BadInput(400, f"Malformed JSON: {_short(exc)}") from None
    # the walk costs several parses: only when the text can hold what it looks for
    if ("\\u" in text and _UNSTORABLE_ESCAPE.search(text)) or text.count("[") + text.count(
        "{"
    ) > MAX_JSON_DEPTH:
        check_json_value(data)
    return data


def check_form(body: bytes) -> None:
    """A URL-encoded form under the text rule: 400 when it cannot be read as UTF-8 fields,
    422 naming the field whose name or value holds a NUL or a lone surrogate."""
    try:
        fields = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise BadInput(400, "Malformed form: the body is not UTF-8") from None
    except ValueError:
        raise BadInput(400, f"Malformed form: more than {MAX_FORM_FIELDS} fields") from None
    for key, value in fields:
        problem = text_problem(key) or text_problem(value)
        if problem is not None:
            raise unicode_error(["body", key.replace("\x00", "")[:64]], problem)


def _short(exc: Exception) -> str:
    return str(exc).split(";")[0][:200]


def check_json_value(data: Any) -> None:
    """Depth, number range and text of an already decoded JSON value, without recursion."""
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(data, 1, ())]
    while stack:
        value, depth, loc = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise unicode_error(["body", *loc], problem)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise BadInput(
                    400,
                    "Malformed JSON: integer out of range (integers must fit "
                    f"in 64 bits) at {'.'.join(map(str, loc)) or 'body'}",
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise BadInput(
                    400,
                    f"Malformed JSON: number out of range at {'.'.join(map(str, loc)) or 'body'}",
                )
        elif depth > MAX_JSON_DEPTH:
            raise BadInput(400, f"Malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels")
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem is not None:
                    raise unicode_error(["body", *loc], f"an object key has {problem}")
                stack.append((item, depth + 1, (*loc, key)))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, (*loc, index)) for index, item in enumerate(value))


async def read_limited_body(request: Request, limit: int) -> bytes:
    """413 as soon as the body is known to exceed ``limit``; never buffers more than that."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, f"Request body larger than {limit} bytes")
        except ValueError:
            raise HTTPException(400, "Invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"Request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

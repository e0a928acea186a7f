"""Hypothesis strategies for input a hostile or broken client sends: full Unicode including NUL
and lone surrogates, JSON nested past the decoder's recursion limit, integers of thousands of
digits, non-finite numbers, dates no calendar has, and bytes that are not UTF-8."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st


@dataclass(frozen=True)
class RawNumber:
    """A JSON number written as-is: Python's json refuses to write ints over 4,300 digits."""

    text: str


ABSURD_DATES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0000-00-00",
    "2024-02-30T00:00:00Z",
    "99999-01-01T00:00:00Z",
    "-0001-01-01",
    "1e308",
    "2024-13-01",
    "T",
    "24:00",
    "1970-01-01T00:00:00+99:00",
    str(10**30),
]
NASTY_TEXT = [
    "\x00",
    "\ud800",
    "a\x00b",
    "\udfff",
    "\ud83d",
    "\U0001f600",
    "\u202e",
    "\ufeff",
    "%00",
    "../../etc",
    "' OR 1=1 --",
    "A" * 5000,
]

text = st.one_of(
    # every code point, lone surrogates included, with NUL and surrogates drawn often
    st.text(
        alphabet=st.one_of(
            st.sampled_from("\x00\ud800\udfff"), st.characters(exclude_categories=())
        ),
        max_size=40,
    ),
    st.sampled_from(NASTY_TEXT),
    st.sampled_from(ABSURD_DATES),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=1, max_value=6000).map(lambda n: RawNumber("9" * n)),
    st.sampled_from(
        [
            RawNumber("1e999"),
            RawNumber("-1e999"),
            RawNumber("NaN"),
            RawNumber("Infinity"),
            RawNumber("1" + "0" * 400 + ".5"),
        ]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


def to_json(value: Any) -> str:
    """json.dumps with ensure_ascii (a lone surrogate travels as \\ud800) and RawNumber."""
    if isinstance(value, RawNumber):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


raw_bodies = st.sampled_from(
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"a":' * 1000 + b"1" + b"}" * 1000,
        b'{"ticket_id": ' + b"9" * 5000 + b"}",
        b"\xff\xfe\x00",
        b'{"subject": "\xed\xa0\x80"}',
        b"",
        b"null",
        b"{",
        b'{"ticket_id": "1"}' * 2,
        b"\x00" * 64,
    ]
)


def objects_with(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects using a route's own field names, so validation goes past the first key."""
    return st.dictionaries(st.sampled_from(fields) if fields else text, values, max_size=6)


def body_for(fields: list[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        raw_bodies, st.one_of(values, objects_with(fields)).map(lambda v: to_json(v).encode())
    )


def url_part(value: str) -> str:
    """Percent-encode any text, lone surrogates included (as the bytes a client would send)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


WEBHOOK_FIELDS = [
    "ticket_id",
    "subject",
    "description",
    "tags",
    "resolution",
    "resolved_at",
    "updated_at",
    "priority",
    "status",
    "requester",
    "requester_email",
    "event",
    "category",
]
REQUEST_FIELDS = [
    "id",
    "subject",
    "description",
    "tags",
    "resolution",
    "resolved_time",
    "last_updated_time",
    "priority",
    "status",
    "requester",
    "category",
]


@st.composite
def webhook_payloads(draw: st.DrawFn) -> bytes:
    """Mostly well-shaped (a ticket id, known fields) so the mapper and the database see the
    hostile values, sometimes anything at all."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(body_for(WEBHOOK_FIELDS))
    if choice == 1:
        inner = draw(objects_with(REQUEST_FIELDS))
        inner.setdefault("id", draw(st.one_of(st.integers(1, 10**6), text)))
        return to_json({"request": inner}).encode()
    flat = draw(objects_with(WEBHOOK_FIELDS))
    flat.setdefault(
        "ticket_id",
        draw(st.one_of(st.integers(1, 10**6), st.from_regex(r"\A[A-Z]{1,3}-[0-9]{1,6}\Z"))),
    )
    if choice == 3:
        flat["resolution"] = draw(text)
    return to_json(flat).encode()

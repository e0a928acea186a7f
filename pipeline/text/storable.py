"""Text PostgreSQL and UTF-8 can hold: no NUL character, no lone UTF-16 surrogate.

Python's JSON decoder produces both happily and PostgreSQL refuses them with an error, so every
piece of client text is checked against this one rule: the request guards for bodies, queries
and paths, and ``CleanText`` for the fields of models the domain stores (tenant names, feedback).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be accepted as text, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "NUL characters (\\u0000) are not allowed"
    return "lone surrogate characters (\\ud800-\\udfff) are not valid Unicode"


def _clean_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


CleanText = Annotated[str, AfterValidator(_clean_text)]
"""A string without NUL or lone surrogates (what PostgreSQL and UTF-8 can hold)."""

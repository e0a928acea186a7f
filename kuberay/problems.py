"""One problem found in values, a Serve config or a manifest, and how it is reported.

Every check in this package reports ``Problem(path, message)``; the path is a JSON-style
location (``workerGroups[0].maxReplicas``) so the message points at the exact field to fix.
Validation of rendered files adds the file and document to it as a ``Finding``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def join_path(base: str, *parts: str | int) -> str:
    """``join_path("spec", "groups", 0, "ray.io/cluster")``
    -> ``spec.groups[0]["ray.io/cluster"]``."""
    out = base
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out = f"{out}.{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def format_loc(loc: Sequence[str | int], base: str = "") -> str:
    return join_path(base, *loc)


def suggestion(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'maxReplicas'?)`` or an empty string."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True, order=True)
class Finding:
    """A problem located in a file and one of its documents (validation of rendered output)."""

    file: str
    document: str
    path: str
    message: str

    def __str__(self) -> str:
        parts = [self.file, self.document, self.path, self.message]
        return ": ".join(p for p in parts if p)


class KubeRayConfigError(ValueError):
    """Values, overrides or generated manifests that must not be deployed."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        self.source = source
        self.problems = sorted(set(problems))
        super().__init__(self.one_line())

    def one_line(self) -> str:
        first = f"{self.source}: {self.problems[0]}" if self.problems else self.source
        more = len(self.problems) - 1
        return f"{first} (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else first

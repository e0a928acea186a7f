"""What an import reports back, shared by the CLI (`ai-agents import`) and the Ray Job entry point
(`scripts/import_tickets.py`).

Operators re-run imports (they are idempotent), so the report must say what changed — new
versus refreshed rows — and exactly what was left out and why, with an address they can act
on (a ticket id, a file name, a CSV line number), not just a count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ImportKind = Literal["tickets", "kb", "assets"]
ProgressCallback = Callable[[int, int | None], None]
"""`progress(done, total)`; `total` is None while unknown (SDP paging does not say)."""

_SEEN_LABEL: dict[ImportKind, str] = {"tickets": "fetched", "kb": "files", "assets": "rows"}


class ImportInterrupted(RuntimeError):
    """The source failed part-way; `result` holds what was already committed (re-run resumes)."""

    def __init__(self, message: str, result: ImportResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Skipped:
    item: str  # "#100231", "guides/vpn.pdf", "line 7"
    reason: str  # a short category, so reports can group ("no resolution", "invalid address")
    detail: str | None = None  # the specifics ("Octet 999 (> 255) not permitted in ...")

    def describe(self) -> str:
        return f"{self.item}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class ImportResult:
    kind: ImportKind
    tenant_id: str
    seen: int = 0
    new: int = 0
    updated: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def imported(self) -> int:
        return self.new + self.updated

    def skip(self, item: str, reason: str, detail: str | None = None) -> None:
        self.skipped.append(Skipped(item, reason, detail))

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "tenant_id": self.tenant_id,
            _SEEN_LABEL[self.kind]: self.seen,
            "new": self.new,
            "updated": self.updated,
            "skipped": len(self.skipped),
            "skipped_by_reason": self.skipped_by_reason(),
            "skipped_items": [
                {"item": s.item, "reason": s.reason, "detail": s.detail} for s in self.skipped
            ],
            **self.details,
        }

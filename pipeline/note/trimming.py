"""What the word cap drops first: the note is trimmed as structured parts, least valuable
content first, so the cap never cuts a sentence in half or drops the footer that carries the
idempotency marker (``AI-Agents enhancement <id>``) and the feedback links."""

from __future__ import annotations

from pipeline.note.layout import NoteParts

# Least valuable first: (action, section, items to keep).
TRIM_PLAN: tuple[tuple[str, str, int], ...] = (
    ("detail", "similar", 0),
    ("detail", "kb", 0),
    ("items", "similar", 1),
    ("items", "kb", 1),
    ("items", "causes", 1),
    ("items", "systems", 2),
    ("items", "steps", 2),
    ("summary", "", 12),
    ("compact", "", 0),
    ("items", "similar", 0),
    ("items", "kb", 0),
    ("items", "systems", 0),
    ("items", "causes", 0),
    ("items", "steps", 0),
    ("summary", "", 0),
)


def trim_once(parts: NoteParts, action: str, key: str, keep: int, excess: int) -> bool:
    """Remove one unit of content by the plan step; False when that step has nothing left."""
    if action == "detail":
        for item in reversed(parts.body[key].items):
            if item.detail:
                item.detail = []
                return True
        return False
    if action == "items":
        items = parts.body[key].items
        if len(items) > keep:
            items.pop()
            return True
        return False
    if action == "summary":
        words = parts.summary.split()
        if len(words) <= keep:
            return False
        kept = max(keep, len(words) - excess - 1)
        parts.summary = " ".join(words[:kept]).rstrip("…") + "…" if kept else ""
        return True
    if parts.notices == parts.short_notices and parts.confidence == parts.short_confidence:
        return False
    parts.notices, parts.confidence = list(parts.short_notices), list(parts.short_confidence)
    return True

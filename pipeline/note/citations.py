"""Citation ids as notes and explain records keep them: ``kind:id`` (``ticket:1042``).

Its own module because the feedback and resolution paths (`suggestion_quality`,
`explain_record`) need it without the synthesizer's LLM client (and the ``openai`` import).
"""

from __future__ import annotations

KINDS = ("ticket", "kb", "asset")


def normalise_citation(raw: str, default_kind: str | None = None) -> str:
    """``[ticket:1]``, ``ticket: 1`` → ``ticket:1``; a bare id gets ``default_kind``."""
    value = raw.strip().strip("[]").strip()
    kind, sep, ident = value.partition(":")
    if sep and kind.strip().lower() in KINDS:
        return f"{kind.strip().lower()}:{ident.strip()}"
    if default_kind is not None and value:
        return f"{default_kind}:{value}"
    return value

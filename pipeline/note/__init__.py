"""Stage 4 — the note: rendering, citations, feedback links, and what the note proposed (explain,
suggestion hits)."""

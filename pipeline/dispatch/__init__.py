"""Stage 1 — dispatch: which queued jobs to claim, fairly, and how many the pools can take."""

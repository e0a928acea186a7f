"""Stage 2 — context: similar resolved tickets and KB articles (full text and vectors, fused), IPs
to assets."""

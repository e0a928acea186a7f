"""Tenants: their settings and runtime view, administration, secrets at rest, and their rate
limits."""

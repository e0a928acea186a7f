"""Logs, traces, metrics and the database-connection gauge."""

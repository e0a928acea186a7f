"""Structured logs: one JSON object per line on stderr, carrying the ids support searches by.

Installed on the root logger, not only on ``ai_agents.*``, because several modules log under
their import path (``pipeline.sdp.client``) and a third-party error can be the one that
matters; every line is then the same shape and goes through the same secret redaction. Inside
Ray the worker's stderr is its ``worker-*.err`` file under the session's ``logs/`` directory
(the actor's log in the dashboard), which a log shipper tails on KubeRay.

Why each piece exists:
- trace/span ids come from the active OpenTelemetry span, so a log line leads to its trace
  and a trace to its log lines without the caller passing anything;
- redaction runs on the record itself (message, string extras, exception text) before any
  handler formats it: a secret pasted into a ticket or echoed in an error must never be
  written down;
- prompt and model-response fields are dropped above DEBUG: they hold ticket text, which is
  tenant data, and they are large.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

from pipeline.text.redaction import redact_secrets_only

CONTEXT_FIELDS = ("tenant_id", "ticket_id", "enhancement_id")
DEBUG_ONLY_FIELDS = frozenset({"prompt", "messages", "response", "completion", "llm_response"})
NOISY_LOGGERS = ("httpx", "httpx2", "httpcore", "asyncio", "urllib3", "openai")

# Everything a bare LogRecord has: whatever else is on a record came in through ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "_redacted",
}


class RedactSecrets(logging.Filter):
    """Rewrites the record once, so every handler (and caplog) sees the redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact_secrets_only(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact_secrets_only(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact_secrets_only(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_secrets_only(record.stack_info)
        record._redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """timestamp, level, logger, message, the request ids, then any other extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = str(value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key in entry or key.startswith("_"):
                continue
            if key in DEBUG_ONLY_FIELDS and record.levelno > logging.DEBUG:
                continue
            entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # json.dumps escapes newlines, so a traceback stays inside its one line.
        return json.dumps(entry, default=str, ensure_ascii=False)


class JsonLogHandler(logging.StreamHandler):
    """Marker class, so ``configure_logging`` can find and replace its own handler."""


def configure_logging(level: str | int = "INFO", *, stream: IO[str] | None = None) -> None:
    """Idempotent: Serve replicas call it in every constructor, the CLI once in ``main``.

    The stream is resolved now (not per record): inside a Serve replica that is the worker's
    stderr, or Serve's logger when ``RAY_SERVE_LOG_TO_STDERR=0`` redirects stderr into the
    replica log file.
    """
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, JsonLogHandler)]:
        root.removeHandler(handler)
    handler = JsonLogHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:  # one line per HTTP call is noise at INFO
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))

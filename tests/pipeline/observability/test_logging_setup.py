"""JSON log lines: shape, request ids, trace ids, redaction, one line per record."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline.observability.logging_setup import JsonLogHandler, configure_logging
from pipeline.observability.tracing import configure_tracing, trace_id_hex, tracer


@pytest.fixture
def captured():
    """Our handler on a buffer; the root logger is put back as it was afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_line_shape_and_request_ids(captured) -> None:
    logging.getLogger("pipeline.enhancer").info(
        "enhancement %s",
        "completed",
        extra={
            "tenant_id": "acme",
            "ticket_id": "42",
            "enhancement_id": "e-1",
            "reason": "because",
        },
    )
    [line] = captured()
    assert line["message"] == "enhancement completed"
    assert line["level"] == "INFO" and line["logger"] == "pipeline.enhancer"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    assert (line["tenant_id"], line["ticket_id"], line["enhancement_id"]) == ("acme", "42", "e-1")
    assert line["reason"] == "because"
    assert "trace_id" not in line  # no span active


def test_trace_and_span_ids_come_from_the_current_span(captured) -> None:
    configure_tracing(exporter=InMemorySpanExporter())
    with tracer().start_as_current_span("enhancement.run") as span:
        logging.getLogger("pipeline.enhancer").warning("inside")
        expected = trace_id_hex(span), format(span.get_span_context().span_id, "016x")
    [line] = captured()
    assert (line["trace_id"], line["span_id"]) == expected


def test_secrets_are_redacted_in_message_extras_and_exceptions(captured) -> None:
    log = logging.getLogger("pipeline.sdp.client")
    log.warning(
        "calling with Authorization: Bearer abcdefghijklmnop1234 password=hunter2xyz",
        extra={"reason": "api_key=sk-or-v1-0123456789abcdef0123", "status": 403},
    )
    try:
        raise RuntimeError("connect to postgresql://svc:S3cretPw@db:5432/app failed")
    except RuntimeError:
        log.exception("database gone")
    text = "\n".join(json.dumps(line) for line in captured())
    for secret in (
        "abcdefghijklmnop1234",
        "hunter2xyz",
        "sk-or-v1-0123456789abcdef0123",
        "S3cretPw",
    ):
        assert secret not in text
    first, second = captured()
    assert first["status"] == 403 and "[SECRET]" in first["reason"]
    assert "Traceback" in second["exc"] and "RuntimeError" in second["exc"]


def test_one_line_per_record_even_with_tracebacks(captured) -> None:
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        logging.getLogger("serve_app.api").exception("multi\nline message")
    entries = captured()
    assert len(entries) == 1
    assert entries[0]["message"] == "multi\nline message"
    assert "line two" in entries[0]["exc"]


def test_prompt_fields_only_at_debug(captured) -> None:
    log = logging.getLogger("pipeline.llm.synthesizer")
    log.info("llm call", extra={"prompt": "ticket text", "model": "m"})
    log.debug("llm call", extra={"prompt": "ticket text", "model": "m"})
    info, debug = captured()
    assert "prompt" not in info and info["model"] == "m"
    assert debug["prompt"] == "ticket text"


def test_level_and_idempotence(captured) -> None:
    stream = io.StringIO()
    configure_logging("WARNING", stream=stream)
    configure_logging("WARNING", stream=stream)
    assert sum(isinstance(h, JsonLogHandler) for h in logging.getLogger().handlers) == 1
    logging.getLogger("cli.main").info("quiet")
    logging.getLogger("cli.main").warning("loud")
    assert [json.loads(x)["message"] for x in stream.getvalue().splitlines()] == ["loud"]
    with pytest.raises(ValueError):
        configure_logging("CHATTY")


def test_unserialisable_extras_and_bad_format_strings_still_log(captured) -> None:
    log = logging.getLogger("serve_app.api")
    log.info("object extra", extra={"thing": object()})
    log.info("bad %d format", "not a number")
    first, second = captured()
    assert first["thing"].startswith("<object")
    assert "bad" in second["message"]

"""configure_tracing, carriers across process hops, and the JSON-lines span file."""

from __future__ import annotations

import json
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline.observability.tracing import (
    JsonLinesSpanExporter,
    configure_tracing,
    context_from_carrier,
    continued,
    current_carrier,
    trace_id_hex,
    tracer,
)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    configure_tracing(exporter=exporter)
    return exporter


def test_configure_is_idempotent_and_sets_the_global_provider(spans) -> None:
    first = configure_tracing()
    assert configure_tracing() is first
    assert trace.get_tracer_provider() is first
    with tracer().start_as_current_span("unit.probe"):
        pass
    assert [s.name for s in spans.get_finished_spans()] == ["unit.probe"]


def test_a_new_exporter_replaces_the_previous_one(spans) -> None:
    later = InMemorySpanExporter()
    configure_tracing(exporter=later)
    with tracer().start_as_current_span("unit.after"):
        pass
    assert spans.get_finished_spans() == ()
    assert [s.name for s in later.get_finished_spans()] == ["unit.after"]


def test_carrier_continues_the_trace_as_the_job_row_does(spans) -> None:
    with tracer().start_as_current_span("webhook.receive") as root:
        carrier = current_carrier()
        trace_id = trace_id_hex(root)
    assert carrier["traceparent"].split("-")[1] == trace_id
    # Later, elsewhere: the enhancer starts from the stored carrier only.
    with tracer().start_as_current_span(
        "enhancement.run", context=context_from_carrier(carrier)
    ) as run:
        assert trace_id_hex(run) == trace_id
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert finished["enhancement.run"].parent.span_id == finished["webhook.receive"].context.span_id


def test_continued_attaches_and_detaches(spans) -> None:
    with tracer().start_as_current_span("caller"):
        carrier = current_carrier()
    assert not trace.get_current_span().get_span_context().is_valid
    with continued(carrier), tracer().start_as_current_span("callee"):
        pass
    assert not trace.get_current_span().get_span_context().is_valid
    with continued(None), tracer().start_as_current_span("orphan"):
        pass
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert finished["callee"].parent.span_id == finished["caller"].context.span_id
    assert finished["orphan"].parent is None


def test_empty_carrier_starts_a_new_trace(spans) -> None:
    with tracer().start_as_current_span("fresh", context=context_from_carrier(None)) as span:
        assert trace_id_hex(span) is not None
    assert spans.get_finished_spans()[0].parent is None


def test_json_lines_exporter_appends_whole_lines_from_many_threads(tmp_path, spans) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = JsonLinesSpanExporter(str(path))
    with (
        tracer().start_as_current_span("parent", attributes={"tenant.id": "acme"}),
        tracer().start_as_current_span("child", attributes={"llm.prompt_tokens": 12}),
    ):
        pass
    finished = spans.get_finished_spans()

    def export_many() -> None:
        for _ in range(50):
            exporter.export(finished)

    threads = [threading.Thread(target=export_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 50 * 2
    records = [json.loads(line) for line in lines]  # every line is intact JSON
    child = next(r for r in records if r["name"] == "child")
    parent = next(r for r in records if r["name"] == "parent")
    assert child["parent_span_id"] == parent["span_id"]
    assert child["trace_id"] == parent["trace_id"] and len(child["trace_id"]) == 32
    assert child["attributes"] == {"llm.prompt_tokens": 12}
    assert parent["attributes"] == {"tenant.id": "acme"} and parent["parent_span_id"] is None
    assert parent["service"] == "ai-agents"


def test_without_an_exporter_spans_get_ids_but_are_not_recorded(tmp_path) -> None:
    """A fresh process with no exporter configured (this test process has one)."""
    import os
    import subprocess
    import sys

    script = (
        "from pipeline.observability.tracing import (\n"
        "    configure_tracing, current_carrier, trace_id_hex, tracer)\n"
        "configure_tracing()\n"
        "with tracer().start_as_current_span('webhook.receive') as span:\n"
        "    print(span.is_recording(), trace_id_hex(span), current_carrier()['traceparent'])\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AI_AGENTS_TRACE_FILE", "OTEL_EXPORTER_OTLP_ENDPOINT")
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    recording, trace_id, traceparent = out
    assert recording == "False"
    assert len(trace_id) == 32 and trace_id != "0" * 32
    assert traceparent.split("-")[1] == trace_id  # still propagates to the job row
    file_env = env | {"AI_AGENTS_TRACE_FILE": str(tmp_path / "spans.jsonl")}
    out = subprocess.run(
        [sys.executable, "-c", script], env=file_env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "True"
    assert out[1] in (tmp_path / "spans.jsonl").read_text()

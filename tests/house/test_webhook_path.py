"""How many of our files one webhook passes through on its way to its note.

One signed webhook goes through the real path without Ray — the HTTP app over ASGI, the
Dispatcher, the Enhancer with the ContextGatherer and the Synthesizer in-process, the SDP and
LLM simulators over HTTP, the real PostgreSQL — while a profile hook records every function of
ours that is entered with the ticket among its arguments (its id or its subject, inside a
string, bytes, a dict, a list or a model, a few levels deep). The files of those functions are
the files a reader opens to follow the ticket from the webhook to the note. Our observability
code is not counted (``pipeline/observability/``, ``db/query_tracing.py``: logs, spans, the
sampler, the query tracer): it watches the flow, whether tracing is on or not, and no reader
follows a ticket there.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from pipeline.dispatch.dispatcher import Dispatcher, DispatcherConfig
from pipeline.enhancer import Enhancer
from pipeline.llm.synthesizer import Synthesizer
from pipeline.retrieval.context_gatherer import ContextGatherer
from pipeline.tenancy.rate_limiter import LocalRateLimits
from pipeline.tenancy.runtime import load_tenant_runtime
from pipeline.text.redaction import redact_pii
from simulators.llm import LLMSimulatorState
from simulators.llm import create_app as create_llm_app
from simulators.servicedesk.app import create_app as create_sdp_app
from simulators.servicedesk.store import SimulatorState
from simulators.servicedesk.webhook_sender import webhook_headers
from simulators.serving import run_in_thread
from tests.job_rows import fail_other_tenants_jobs

ROOT = Path(__file__).resolve().parents[2]
# Product code only: what a reader of the service opens (tests, simulators and benchmarks aside).
NOT_PRODUCT = ("tests/", "simulators/", "benchmarks/")
OBSERVABILITY = ("pipeline/observability/", "db/query_tracing.py")
MARKER = "7731904"  # in the ticket id and its subject, nowhere else
LLM_KEY = "sk-or-v1-webhook-path"
MAX_FILES = 20


def _carries(value: Any, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if isinstance(value, str):
        return MARKER in value
    if isinstance(value, bytes | bytearray):
        return MARKER.encode() in value
    if isinstance(value, dict):
        return any(_carries(v, depth + 1) for v in list(value.values())[:50])
    if isinstance(value, list | tuple):
        return any(_carries(v, depth + 1) for v in value[:50])
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict) and type(value).__module__.split(".")[0] not in {"asyncpg"}:
        return any(_carries(v, depth + 1) for v in list(fields.values())[:50])
    return False


class PathRecorder:
    """A ``sys.setprofile`` hook: product files entered with the ticket in the arguments."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}  # file -> first function seen carrying the ticket
        self._checked: set[Any] = set()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        path = frame.f_code.co_filename
        if not path.startswith(str(ROOT)):
            return
        rel = str(Path(path).relative_to(ROOT))
        if rel.startswith(NOT_PRODUCT + OBSERVABILITY) or rel in self.files:
            return
        code = frame.f_code
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        args = [frame.f_locals.get(name) for name in names]
        if any(_carries(a) for a in args):
            self.files[rel] = code.co_qualname


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[SimulatorState, str, str]]:
    sdp = SimulatorState()
    llm = LLMSimulatorState(api_keys=[LLM_KEY])
    with (
        run_in_thread(create_sdp_app(sdp)) as sdp_server,
        run_in_thread(create_llm_app(llm), graceful_shutdown_s=0.2) as llm_server,
    ):
        yield sdp, sdp_server.url, f"{llm_server.url}/api/v1"


async def test_one_webhook_reaches_its_note_through_at_most_20_of_our_files(
    pool, cipher, database, make_tenant, api_client, sims
) -> None:
    sdp, sdp_url, llm_url = sims
    creds = await make_tenant("path", sdp_url=sdp_url, settings={"redact_pii": True})
    runtime = await load_tenant_runtime(pool, cipher, creds.tenant_id)
    sdp.add_portal(creds.tenant_id, runtime.sdp_api_key)
    synthesizer = Synthesizer(base_url=llm_url, api_key=LLM_KEY, models=["openai/gpt-4o-mini"])
    limiter = LocalRateLimits()
    async with httpx.AsyncClient() as http:
        gatherer = ContextGatherer(pool)
        enhancer = Enhancer(
            pool,
            load_tenant=lambda t: load_tenant_runtime(pool, cipher, t),
            gather=lambda t, ticket, needs_fetch: gatherer.gather(t, ticket, needs_fetch=False),
            synthesize=lambda t, context, settings: synthesizer.synthesize(
                context, redact=settings.redact_pii, redactor=redact_pii
            ),
            limiter=limiter,
            http=http,
        )
        done: asyncio.Queue[str] = asyncio.Queue()

        async def hand_off(job: Any) -> None:
            if job.tenant_id != creds.tenant_id:
                raise RuntimeError("not this test's job")  # back to the queue
            await done.put(await enhancer.run(job))

        # other tests' leftover jobs would share the dispatcher's claims with this one
        await fail_other_tenants_jobs(database.owner_url, keep={creds.tenant_id})
        dispatcher = Dispatcher(
            pool, hand_off, listen_url=database.service_url, config=DispatcherConfig(poll_s=0.05)
        )
        with sdp.lock:  # the simulator numbers requests from 100000: this one gets MARKER
            sdp.portal(creds.tenant_id).next_number = int(MARKER) - 100000
        request = sdp.add_request(
            creds.tenant_id,
            subject=f"Printer {MARKER} jams on every second page",
            description="<p>The second-floor printer jams on every page since the toner was "
            "replaced; users at 10.20.0.15 cannot print.</p>",
        )
        assert request["id"] == MARKER
        body = json.dumps({"request": request}).encode()
        headers = webhook_headers(body, mode="hmac", secret=creds.webhook_secret)
        recorder = PathRecorder()
        sys.setprofile(recorder)
        try:
            answer = await api_client.http.post(
                f"{api_client.url}/webhook/servicedesk/{creds.tenant_id}",
                content=body,
                headers=headers,
            )
            assert answer.status_code == 202, answer.text
            await dispatcher.start()
            async with asyncio.timeout(120):
                outcome = await done.get()
        finally:
            sys.setprofile(None)
            await dispatcher.stop()
            await synthesizer.close()
    assert outcome == "completed"
    [note] = sdp.recorded_notes(creds.tenant_id, MARKER)
    assert "Printer" in note.description or "print" in note.description.lower()
    files = sorted(recorder.files)
    report = "\n".join(f"  {f}  ({recorder.files[f]})" for f in files)
    print(f"\nthe webhook's path: {len(files)} files\n{report}")
    assert len(files) <= MAX_FILES, f"{len(files)} files on the webhook's path:\n{report}"

"""The soak's load: new tickets announced by signed webhooks at a steady rate, delivered the
way SDP would (a refused or unanswered delivery is tried again), technicians' feedback on a
share of the notes, and the record of what became of every accepted webhook.

A webhook counts as accepted once the service answered it with an enhancement id (202, or 200
for a repeated delivery of one it had already committed). Its job is looked up in PostgreSQL
until it finishes, well before any retention could delete the row.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from benchmarks.rig.loadgen import signed_headers
from local_stack.simulators import Simulators
from local_stack.tenants import Tenant

RETRYABLE = {0, 429, 500, 502, 503, 504}


@dataclass
class Webhook:
    n: int
    tenant_id: str
    ticket_id: str
    first_sent: float  # time.time() of the first delivery
    statuses: list[int] = field(default_factory=list)
    accepted_at: float | None = None
    enhancement_id: str | None = None
    ack_ms: float | None = None  # the accepted delivery's round trip


@dataclass
class Finished:
    enhancement_id: str
    tenant_id: str
    status: str
    outcome: str | None
    attempts: int
    received: float
    finished: float
    note_id: str | None


class SoakLoad:
    """Open loop: webhook ``n`` is due at ``start + n / rate`` whatever the answers."""

    def __init__(
        self,
        url: str,
        sims: Simulators,
        tenants: list[Tenant],
        *,
        rate: float,
        retry_for_s: float,
        feedback_every: int,
    ) -> None:
        self.url = url.rstrip("/")
        self.sims = sims
        self.tenants = tenants
        self.rate = rate
        self.retry_for_s = retry_for_s
        self.feedback_every = feedback_every
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64))
        self.webhooks: list[Webhook] = []
        self.outstanding: dict[str, Webhook] = {}
        self.finished: dict[str, Finished] = {}
        self.feedback = {"sent": 0, "failed": 0}
        self._templates = {t.id: t.templates or [_DEFAULT_TEMPLATE] for t in tenants}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, seconds: float) -> None:
        """Send for ``seconds``, then wait for deliveries still being retried."""
        start = time.monotonic()
        n = 0
        while True:
            due = start + n / self.rate
            if due - start >= seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self._deliver(n))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            n += 1
        if self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _new_ticket(self, tenant: Tenant, n: int) -> dict[str, Any]:
        templates = self._templates[tenant.id]
        template = dict(templates[n % len(templates)])
        for key in ("id", "display_id", "created_time", "last_updated_time"):
            template.pop(key, None)
        return self.sims.sdp.add_request(tenant.id, template)

    async def _deliver(self, n: int) -> None:
        tenant = self.tenants[n % len(self.tenants)]
        request = self._new_ticket(tenant, n)
        hook = Webhook(n, tenant.id, str(request["id"]), time.time())
        self.webhooks.append(hook)
        body = json.dumps({"request": request}).encode()
        backoff = 0.5
        while True:
            t0 = time.perf_counter()
            try:
                response = await self.http.post(
                    f"{self.url}/webhook/servicedesk/{tenant.id}",
                    content=body,
                    headers=signed_headers(tenant.secret.encode(), body),
                )
                status = response.status_code
                answer = response.json() if status in (200, 202) else {}
            except (httpx.HTTPError, ValueError):
                status, answer = 0, {}
            hook.statuses.append(status)
            if answer.get("enhancement_id"):
                hook.accepted_at = time.time()
                hook.ack_ms = (time.perf_counter() - t0) * 1000
                hook.enhancement_id = str(answer["enhancement_id"])
                self.outstanding[hook.enhancement_id] = hook
                return
            if status not in RETRYABLE or time.time() - hook.first_sent > self.retry_for_s:
                return
            await asyncio.sleep(backoff)
            backoff = min(10.0, backoff * 2)

    async def poll(self, owner_url: str) -> list[Finished]:
        """Look up the outstanding jobs; those finished are recorded and returned."""
        if not self.outstanding:
            return []
        conn = await asyncpg.connect(owner_url, timeout=10)
        try:
            rows = await conn.fetch(
                """SELECT id::text AS id, tenant_id, status, outcome, attempts, note_id,
                          extract(epoch FROM received_at) AS received,
                          extract(epoch FROM finished_at) AS finished
                   FROM enhancements
                   WHERE id = ANY($1::uuid[]) AND status IN ('completed', 'failed')""",
                list(self.outstanding),
            )
        finally:
            await conn.close()
        out = []
        for r in rows:
            done = Finished(
                r["id"],
                r["tenant_id"],
                r["status"],
                r["outcome"],
                r["attempts"],
                float(r["received"]),
                float(r["finished"]),
                r["note_id"],
            )
            self.finished[done.enhancement_id] = done
            self.outstanding.pop(done.enhancement_id, None)
            out.append(done)
        if self.feedback_every:
            await self._send_feedback([d for d in out if d.status == "completed"])
        return out

    async def _send_feedback(self, done: list[Finished]) -> None:
        """A rating with a comment on every ``feedback_every``-th note, as a technician would
        (it adds a feedback row and an audit row)."""
        tokens = {t.id: t.api_token for t in self.tenants}
        for item in done:
            if int(item.enhancement_id[:8], 16) % self.feedback_every:
                continue
            try:
                response = await self.http.post(
                    f"{self.url}/api/v1/feedback",
                    json={
                        "enhancement_id": item.enhancement_id,
                        "feedback_type": "rating",
                        "rating_value": 4,
                        "technician_email": "tech@msp.example",
                        "comment": "Useful: the VPN KB article was the fix.",
                    },
                    headers={"Authorization": f"Bearer {tokens[item.tenant_id]}"},
                )
                ok = response.status_code == 201
            except httpx.HTTPError:
                ok = False
            self.feedback["sent" if ok else "failed"] += 1

    async def close(self) -> None:
        await self.http.aclose()


_DEFAULT_TEMPLATE = {
    "subject": "Outlook keeps prompting for password",
    "description": "<div>Outlook prompts for credentials; mail server 10.20.30.40</div>",
}

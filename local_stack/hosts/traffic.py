"""Webhooks as SDP sends them, from the ingress controller's host, through the worker hosts'
Serve ports, and a record of every attempt.

The ingress controller (this sender) knows the worker hosts' Serve endpoints, as a Service
does, and routes to those its readiness probe (``/-/healthz`` every second) finds ready,
round-robin; with none ready it tries them all. A webhook that is refused (no connection, a
timeout, a 5xx) is sent again after a second, as SDP retries, until it is acknowledged (202)
or ``give_up_s`` passes. Every attempt is kept (``Attempt``), so a run can tell how long
webhooks were refused, which hosts kept accepting, and which acknowledged webhooks never got
a note.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.webhook_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from local_stack.simulators import Simulators
from local_stack.tenants import Tenant


@dataclass(frozen=True)
class Attempt:
    ticket: str
    target: str
    at: float  # time.time() when sent
    status: int  # 0: no answer (refused, reset, timeout)
    seconds: float


@dataclass
class Webhook:
    tenant: str
    ticket: str
    first_sent: float
    acknowledged: float | None = None
    enhancement_id: str | None = None
    target: str | None = None


@dataclass
class Sender:
    targets: Sequence[str]  # http://<worker ip>:8000
    sims: Simulators
    give_up_s: float = 180.0
    timeout_s: float = 10.0
    attempts: list[Attempt] = field(default_factory=list)
    webhooks: list[Webhook] = field(default_factory=list)
    ready: dict[str, bool] = field(default_factory=dict)
    _turn: Any = field(default_factory=lambda: itertools.count())
    _http: httpx.AsyncClient | None = None

    async def start(self) -> Sender:
        """Call on the ingress host's event loop (its connections are made there)."""
        self._http = httpx.AsyncClient(
            timeout=self.timeout_s, limits=httpx.Limits(max_connections=64)
        )
        self.ready = dict.fromkeys(self.targets, False)
        self._probe = asyncio.create_task(self._probe_forever())
        return self

    async def _probe_forever(self) -> None:
        assert self._http is not None
        while True:
            for target in self.targets:
                try:
                    response = await self._http.get(f"{target}/-/healthz", timeout=2.0)
                    self.ready[target] = response.status_code == 200
                except httpx.HTTPError:
                    self.ready[target] = False
            await asyncio.sleep(1.0)

    def _pick(self) -> str:
        candidates = [t for t in self.targets if self.ready.get(t)] or list(self.targets)
        return candidates[next(self._turn) % len(candidates)]

    def _ticket(self, tenant: Tenant) -> dict[str, Any]:
        templates = tenant.templates or [
            {"subject": "VPN drops every hour", "description": "<p>VPN to 10.20.30.40 drops</p>"}
        ]
        template = dict(templates[len(self.webhooks) % len(templates)])
        for key in ("id", "display_id", "created_time", "last_updated_time"):
            template.pop(key, None)
        return self.sims.sdp.add_request(tenant.id, template)

    async def send(self, tenant: Tenant) -> Webhook:
        assert self._http is not None
        request = self._ticket(tenant)
        body = json.dumps({"request": request}).encode()
        hook = Webhook(tenant.id, str(request["id"]), time.time())
        self.webhooks.append(hook)
        while time.time() - hook.first_sent < self.give_up_s:
            target = self._pick()
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign(tenant.secret.encode(), stamp, body),
            }
            sent = time.time()
            try:
                response = await self._http.post(
                    f"{target}/webhook/servicedesk/{tenant.id}", content=body, headers=headers
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            self.attempts.append(Attempt(hook.ticket, target, sent, status, time.time() - sent))
            if status in (200, 202):
                hook.acknowledged = time.time()
                hook.enhancement_id = response.json().get("enhancement_id")
                hook.target = target
                return hook
            if 400 <= status < 500:
                return hook  # refused for good (bad signature, unknown tenant): not retried
            await asyncio.sleep(1.0)
        return hook

    async def steady(self, tenants: Sequence[Tenant], rate_per_s: float, duration_s: float) -> None:
        """Webhooks at ``rate_per_s`` for ``duration_s``, each retried until acknowledged."""
        start = time.monotonic()
        tasks = []
        for i in itertools.count():
            due = start + i / rate_per_s
            if due - start >= duration_s:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(self.send(tenants[i % len(tenants)])))
        await asyncio.gather(*tasks)

    async def close(self) -> None:
        if getattr(self, "_probe", None) is not None:
            self._probe.cancel()
        if self._http is not None:
            await self._http.aclose()


def refused_seconds(attempts: Sequence[Attempt], since: float, until: float) -> int:
    """Whole seconds in [since, until) in which at least one attempt got no 2xx."""
    return len(
        {
            int(a.at - since)
            for a in attempts
            if since <= a.at < until and a.status not in (200, 202)
        }
    )


def accepted_by_target(attempts: Sequence[Attempt], since: float, until: float) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in attempts:
        if since <= a.at < until and a.status in (200, 202):
            out[a.target] = out.get(a.target, 0) + 1
    return out


async def owner_value(owner_url: str, sql: str, *args: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(owner_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def wait_until(predicate: Any, timeout_s: float, period_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period_s)
    raise TimeoutError(f"not true after {timeout_s:.0f} s")


def account(sender: Sender, notes: Sequence[Any]) -> dict[str, int]:
    """What became of every webhook: sent, acknowledged (202), never acknowledged (given up
    after ``give_up_s``), acknowledged and then lost (no note on its ticket), and notes
    written more than once on a ticket. ``notes`` are the SDP simulator's ``NoteRecord``s."""
    per_ticket: dict[tuple[str, str], int] = {}
    for note in notes:
        key = (note.portal, str(note.request_id))
        per_ticket[key] = per_ticket.get(key, 0) + 1
    acked = [h for h in sender.webhooks if h.acknowledged is not None]
    return {
        "sent": len(sender.webhooks),
        "acknowledged": len(acked),
        "never_acknowledged": len(sender.webhooks) - len(acked),
        "acknowledged_then_lost": sum(1 for h in acked if (h.tenant, h.ticket) not in per_ticket),
        "duplicate_notes": sum(n - 1 for n in per_ticket.values() if n > 1),
    }


def note_gap_s(notes: Sequence[Any], since: float, until: float) -> float:
    """The longest time in [since, until] without a note written: how long the pipeline
    stalled."""
    times = sorted(n.created_at for n in notes if since <= n.created_at <= until)
    edges = [since, *times, until]
    return round(max(b - a for a, b in itertools.pairwise(edges)), 1)


async def unfinished_jobs(owner_url: str, ids: Sequence[str]) -> dict[str, int]:
    """Of the enhancement jobs ``ids`` (the acknowledged webhooks'): how many have no row, and
    how many are still queued or running."""
    import asyncpg

    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, status FROM enhancements WHERE id = ANY($1::uuid[])",
            list(ids),
        )
    finally:
        await conn.close()
    found = {r["id"]: r["status"] for r in rows}
    return {
        "missing": sum(1 for i in ids if i not in found),
        "not_finished": sum(1 for s in found.values() if s not in ("completed", "failed")),
        "failed": sum(1 for s in found.values() if s == "failed"),
    }

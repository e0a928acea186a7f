"""Webhook load generator, run as its own process so its CPU is measurable.

Closed loop (default): ``clients`` connections each send the next webhook as soon as the last
one is answered (measures capacity). Open loop (``rate`` in the spec): webhooks are due at a
fixed rate whatever the answers, latency counted from the due time (measures latency at a
given load, without coordinated omission).

``python -m benchmarks.rig.loadgen SPEC.json`` reads a spec (URL, tenants with their webhook
secrets, clients, seconds, request cap, ticket-id prefix), drives ``clients`` concurrent
keep-alive connections (aiohttp on uvloop: the cheapest client available here, because on two
cores every cycle the generator burns is taken from the server), and prints one JSON document:
counts per status, latencies of the measured window, and the generator's own CPU seconds.

Every request is a distinct ticket (``{prefix}-{client}-{n}``) in SDP's v3 webhook shape,
signed with ``core.webhook_auth.sign`` (HMAC-SHA256 over ``"{timestamp}." +
body``, the signer the service verifies against) or, with ``"auth": "token"`` in the spec,
carrying the tenant's
``X-Webhook-Token``; each 202 is a new durable job row.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

from core.webhook_auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOKEN_HEADER,
    sign,
)

DESCRIPTION = (
    "<div>Since this morning Outlook on several laptops in the finance department keeps asking "
    "for credentials and then shows 'Trying to connect'. Webmail works. The users are on the "
    "VPN; the mail server is 10.20.30.40 and the proxy 10.20.0.5. Restarting Outlook does not "
    "help; a new profile works for about an hour. Ticket raised by the finance team lead.</div>"
)


def ticket_body(ticket_id: str, now_ms: int) -> bytes:
    payload = {
        "request": {
            "id": ticket_id,
            "subject": f"Outlook keeps prompting for password ({ticket_id})",
            "description": DESCRIPTION,
            "priority": {"name": "High"},
            "status": {"name": "Open"},
            "requester": {"name": "Dana Finance", "email_id": "dana@example.com"},
            "last_updated_time": {"value": str(now_ms)},
        }
    }
    return json.dumps(payload).encode()


def signed_headers(secret: bytes, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(secret, stamp, body),
    }


def token_headers(secret: bytes) -> dict[str, str]:
    """Token mode, what an SDP custom action sends out of the box."""
    return {"Content-Type": "application/json", TOKEN_HEADER: secret.decode()}


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    urls = [u.rstrip("/") for u in spec.get("urls") or [spec["url"]]]
    tenants = [(t["id"], t["secret"].encode()) for t in spec["tenants"]]
    clients = int(spec["clients"])
    seconds = float(spec["seconds"])
    warmup = float(spec.get("warmup_s", 0.0))
    cap = int(spec.get("max_requests", 1_000_000))
    prefix = spec["prefix"]
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    issued = 0
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=30)
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    measured = 0

    token_mode = spec.get("auth") == "token"  # X-Webhook-Token instead of an HMAC signature

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post_signed(target: str, secret: bytes, ticket_id: str) -> str:
            """One signed webhook; its status code, or the exception's name (counted)."""
            body = ticket_body(ticket_id, int(time.time() * 1000))
            try:
                headers = token_headers(secret) if token_mode else signed_headers(secret, body)
                async with session.post(target, data=body, headers=headers) as response:
                    await response.read()
                    status = str(response.status)
            except Exception as exc:  # noqa: BLE001 - counted, not fatal
                status = type(exc).__name__
            statuses[status] = statuses.get(status, 0) + 1
            return status

        async def client(index: int) -> None:
            nonlocal issued, measured
            tenant_id, secret = tenants[index % len(tenants)]
            url = urls[index % len(urls)]
            target = f"{url}/webhook/servicedesk/{tenant_id}"
            n = 0
            while issued < cap:
                now = time.perf_counter()
                if now >= stop_at:
                    return
                issued += 1
                n += 1
                t0 = time.perf_counter()
                status = await post_signed(target, secret, f"{prefix}-{index}-{n}")
                t1 = time.perf_counter()
                if t0 >= measure_from and t1 <= stop_at:
                    latencies.append((t1 - t0) * 1000.0)
                    if status in ("200", "202"):
                        measured += 1

        async def scheduled(i: int, at: float) -> None:
            """Open loop: request ``i`` is due at ``at``; its latency counts from then, so
            waiting for a free connection is included (no coordinated omission)."""
            nonlocal issued, measured
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            issued += 1
            tenant_id, secret = tenants[i % len(tenants)]
            url = urls[i % len(urls)]
            status = await post_signed(
                f"{url}/webhook/servicedesk/{tenant_id}", secret, f"{prefix}-o-{i}"
            )
            t1 = time.perf_counter()
            if at >= measure_from:
                latencies.append((t1 - at) * 1000.0)
                if status in ("200", "202"):
                    measured += 1

        rate = float(spec.get("rate") or 0)
        if rate > 0:
            count = min(cap, int(rate * (warmup + seconds)))
            await asyncio.gather(*(scheduled(i, started + i / rate) for i in range(count)))
        else:
            await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    window = max(1e-9, min(seconds, wall - warmup))
    if float(spec.get("rate") or 0) > 0:  # achieved rate of the measured window
        window = max(1e-9, wall - warmup)
    return {
        "issued": issued,
        "statuses": statuses,
        "accepted": statuses.get("202", 0),
        "measured_ok": measured,
        "window_s": window,
        "throughput": measured / window,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "latencies_ms": latencies if spec.get("return_latencies") else None,
    }


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a project dependency
        pass
    result = asyncio.run(run(spec))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()

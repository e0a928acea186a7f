"""What a benchmark run needs, started on loopback and torn down afterwards.

- ``start_database``: embedded PostgreSQL (pgserver) in a temporary data dir, migrated, with
  the restricted service role — exactly ``cli.runtime.resolve_runtime``.
- ``Simulators``: the SDP and LLM simulators on loopback threads (``simulators.serving``).
- ``create_tenants``: tenants through ``TenantAdmin`` plus their SDP simulator portals.
- ``service_env``: the ``AI_AGENTS_*`` settings the replicas (or bare uvicorn) read.
- ``RayServe``: Ray + Serve in this process (pipeline, fairness, recovery, footprint).
- ``ServeChild``: Ray + Serve in a child process (``python -m benchmarks.stack serve``) so each
  intake configuration gets the Ray/Serve feature flags it names (they are read at import).
- ``ProcessSampler``: CPU seconds and resident memory of every process of the run (this
  process and its descendants — Ray, replicas, HAProxy, simulators — plus the PostgreSQL
  postmaster and its backends).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from pipeline.core.ingress_mode import haproxy_private_environment

REPO = Path(__file__).resolve().parents[1]
APP_NAME = "ai_agents"
TEST_LLM_KEY = "sk-or-v1-benchmark"
log = logging.getLogger(__name__)


# -- machine ---------------------------------------------------------------------------------
def add_pipeline_options(parser: argparse.ArgumentParser, *, pools: bool = True) -> None:
    """The simulator and Ray options every pipeline-driving script takes."""
    parser.add_argument("--llm-latency", type=float, default=2.0)
    parser.add_argument("--jitter", type=float, default=20.0, help="LLM latency jitter, %%")
    parser.add_argument("--sdp-latency-ms", type=float, default=50.0)
    parser.add_argument("--num-cpus", type=int, default=0, help="Ray logical CPUs (0: nproc)")
    if pools:
        parser.add_argument(
            "--pools",
            choices=["product", "previous"],
            default="product",
            help="previous: the pool options before 2026-11-26 "
            "(benchmarks.pipeline.PREVIOUS_POOLS)",
        )


def run_script(parse_args: Any, main_async: Any, report: Any, argv: list[str] | None) -> None:
    """``main()`` of a script whose ``main_async`` returns one result document."""
    args = parse_args(argv)
    data = asyncio.run(main_async(args))
    finish(data, data["machine"], report, args.json)


def finish(data: Any, machine: dict[str, Any], report: Any, json_path: str) -> None:
    """Every script's ending: the machine line, the tables, and the raw figures if asked."""
    print(f"\nmachine: {json.dumps(machine)}")
    report(data)
    if json_path:
        Path(json_path).write_text(json.dumps(data, indent=1, default=str))


def machine_info() -> dict[str, Any]:
    import ray

    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": model,
        "ray": ray.__version__,
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def free_port() -> int:
    from pipeline.core.ports import free_port as _free

    return _free()


# -- tables ----------------------------------------------------------------------------------
def print_table(title: str, headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """A GitHub-markdown table (also readable in a terminal); returned and printed."""
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    text = "\n".join(
        [
            f"\n### {title}\n",
            line(headers),
            "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *(line(r) for r in rows),
        ]
    )
    print(text, flush=True)
    return text


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def percentile(values: Iterable[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# -- database --------------------------------------------------------------------------------
@dataclass
class Database:
    data_dir: Path
    service_url: str
    owner_url: str
    encryption_keys: str
    admin_token: str

    @property
    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        return None


async def start_database(data_dir: Path) -> Database:
    from cli.runtime import resolve_runtime
    from pipeline.core.settings import Settings

    settings = Settings(
        data_dir=data_dir,
        database_url=None,
        encryption_keys=None,
        admin_token=None,
        migration_database_url=None,
    )
    runtime = await resolve_runtime(settings)
    assert runtime.owner_url and runtime.admin_token
    return Database(
        data_dir,
        runtime.service_url,
        runtime.owner_url,
        runtime.encryption_keys,
        runtime.admin_token,
    )


def make_data_dir(label: str) -> Path:
    # Short path: the PostgreSQL Unix socket lives in it (socket paths are capped at 107 bytes).
    return Path(tempfile.mkdtemp(prefix=f"aab-{label}-", dir="/tmp"))


def remove_data_dir(path: Path) -> None:
    """Stop the embedded PostgreSQL living in ``path`` (if any), then delete ``path``.

    pgserver stops its server at interpreter exit with ``pg_ctl -D``; once the directory is
    gone that cannot work, so a server would be left running. Stop it first (SIGINT = fast
    shutdown)."""
    pid_file = path / "postgres" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 15
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            time.sleep(0.1)
    shutil.rmtree(path, ignore_errors=True)


# -- simulators ------------------------------------------------------------------------------
class Simulators:
    def __init__(
        self,
        *,
        llm_latency_s: float = 0.0,
        llm_jitter_pct: float = 0.0,
        sdp_latency_ms: float = 0.0,
    ) -> None:
        from simulators.llm.app import create_app as create_llm_app
        from simulators.llm.state import LLMSimulatorState
        from simulators.servicedesk.app import create_app as create_sdp_app
        from simulators.servicedesk.store import SimulatorState
        from simulators.serving import run_in_thread

        self.sdp_latency_ms = sdp_latency_ms
        self.sdp = SimulatorState(seed=11)
        self.llm = LLMSimulatorState(latency_s=llm_latency_s, jitter_pct=llm_jitter_pct)
        self._sdp_server = run_in_thread(create_sdp_app(self.sdp))
        self._llm_server = run_in_thread(create_llm_app(self.llm))

    @property
    def sdp_url(self) -> str:
        return self._sdp_server.url

    @property
    def llm_url(self) -> str:
        return self._llm_server.url

    def add_portal(self, tenant_id: str, key: str) -> None:
        self.sdp.add_portal(tenant_id, key, "onprem")
        if self.sdp_latency_ms:
            self.sdp.update_faults(tenant_id, latency_ms=self.sdp_latency_ms)

    def notes_by_ticket(self, tenant_ids: Iterable[str]) -> dict[tuple[str, str], list[str]]:
        """(tenant, ticket) -> descriptions of the notes written on it."""
        out: dict[tuple[str, str], list[str]] = {}
        for tenant in tenant_ids:
            for note in self.sdp.recorded_notes(tenant):
                out.setdefault((tenant, note.request_id), []).append(note.description)
        return out

    def stop(self) -> None:
        self._sdp_server.stop()
        self._llm_server.stop()


# -- tenants ---------------------------------------------------------------------------------
@dataclass
class Tenant:
    id: str
    secret: str
    api_token: str
    templates: list[dict[str, Any]] = field(default_factory=list)

    def spec(self) -> dict[str, str]:
        return {"id": self.id, "secret": self.secret}


GENEROUS = {
    "llm_rate_per_minute": 1_000_000,
    "sdp_rate_per_minute": 1_000_000,
    "webhook_rate_per_minute": 10_000_000,
}


async def create_tenants(
    db: Database,
    count: int,
    prefix: str,
    *,
    sdp_url: str,
    sims: Simulators | None = None,
    settings: dict[str, Any] | None = None,
    webhook_auth: str = "hmac",
) -> list[Tenant]:
    from db.pool import create_pool
    from pipeline.core.sdp_url_policy import SdpUrlPolicy
    from pipeline.credential_cipher import CredentialCipher
    from serve_app.tenant_admin import TenantAdmin, TenantCreate

    pool = await create_pool(db.service_url, min_size=1, max_size=2)
    try:
        admin = TenantAdmin(
            pool,
            CredentialCipher.from_csv(db.encryption_keys),
            url_policy=SdpUrlPolicy(allow_loopback=True),
        )  # simulators
        tenants = []
        for _ in range(count):
            tenant_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
            key = f"sdp-{uuid.uuid4().hex}"
            if sims is not None:
                sims.add_portal(tenant_id, key)
            created = await admin.create(
                TenantCreate(
                    id=tenant_id,
                    sdp_url=sdp_url,
                    sdp_key=key,
                    webhook_auth=webhook_auth,
                    settings=settings or GENEROUS,
                ),
                actor="benchmark",
            )
            assert created.webhook_secret and created.api_token
            tenants.append(Tenant(tenant_id, created.webhook_secret, created.api_token))
        return tenants
    finally:
        await pool.close()


async def seed_knowledge(db: Database, tenants: list[Tenant]) -> dict[str, int]:
    """Give each tenant a demo tenant's history, KB and assets (acme/globex alternating), so
    context gathering and prompts have realistic sizes. Returns rows per kind."""
    from db.pool import create_pool, tenant_transaction
    from db.repositories.knowledge import upsert_resolved_ticket
    from pipeline.importers import import_assets_csv, import_kb_directory
    from pipeline.importers.tickets import ticket_record
    from simulators.demo_data import TENANTS, load_demo_dataset

    counts = {"tickets": 0, "kb": 0, "assets": 0}
    datasets = [load_demo_dataset(name) for name in TENANTS]
    pool = await create_pool(db.service_url, min_size=1, max_size=2)
    try:
        for i, tenant in enumerate(tenants):
            data = datasets[i % len(datasets)]
            async with tenant_transaction(pool, tenant.id) as conn:
                for request in data.resolved_tickets:
                    rec = ticket_record(request)
                    await upsert_resolved_ticket(
                        conn,
                        tenant_id=tenant.id,
                        ticket_id=rec.ticket_id,
                        subject=rec.subject,
                        description=rec.description,
                        resolution=rec.resolution,
                        priority=rec.priority,
                        tags=rec.tags,
                        resolved_at=rec.resolved_at,
                    )
                    counts["tickets"] += 1
            counts["kb"] += (await import_kb_directory(pool, tenant.id, data.kb_dir)).seen
            counts["assets"] += (await import_assets_csv(pool, tenant.id, data.assets_csv)).seen
            tenant.templates = data.open_tickets
    finally:
        await pool.close()
    return counts


@dataclass
class Sent:
    tenant_id: str
    ticket_id: str
    enhancement_id: str | None
    status: int
    sent_at: float  # time.time()
    ack_ms: float


class TicketSender:
    """New tickets as SDP would report them: created in the SDP simulator (so the note can be
    written), then a signed v3 webhook with the full request object."""

    def __init__(self, url: str, sims: Simulators, *, timeout_s: float = 30) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.sims = sims
        self.http = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=64))
        self._n = 0

    def new_request(self, tenant: Tenant) -> dict[str, Any]:
        templates = tenant.templates or [
            {
                "subject": "Outlook keeps prompting for password",
                "description": (
                    "<div>Outlook prompts for credentials; mail server 10.20.30.40</div>"
                ),
            }
        ]
        template = dict(templates[self._n % len(templates)])
        self._n += 1
        for key in ("id", "display_id", "created_time", "last_updated_time"):
            template.pop(key, None)
        return self.sims.sdp.add_request(tenant.id, template)

    async def send(self, tenant: Tenant, *, retries: int = 0) -> Sent:
        from benchmarks.loadgen import signed_headers

        request = self.new_request(tenant)
        body = json.dumps({"request": request}).encode()
        for attempt in range(retries + 1):
            sent_at = time.time()
            t0 = time.perf_counter()
            try:
                response = await self.http.post(
                    f"{self.url}/webhook/servicedesk/{tenant.id}",
                    content=body,
                    headers=signed_headers(tenant.secret.encode(), body),
                )
                status = response.status_code
                enhancement_id = (
                    response.json().get("enhancement_id") if status in (200, 202) else None
                )
            except Exception:  # noqa: BLE001 - e.g. the ingress is restarting
                status, enhancement_id = 0, None
            ack_ms = (time.perf_counter() - t0) * 1000
            if enhancement_id or attempt == retries:
                return Sent(tenant.id, request["id"], enhancement_id, status, sent_at, ack_ms)
            await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    async def open_loop(self, rate_per_s: float, count: int, pick: Any) -> list[Sent]:
        """``count`` webhooks at a fixed rate, not waiting for answers (open loop)."""
        start = time.monotonic()
        tasks = []
        for i in range(count):
            delay = start + i / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.send(pick(i))))
        return list(await asyncio.gather(*tasks))

    async def burst(self, count: int, pick: Any, concurrency: int = 32) -> list[Sent]:
        """``count`` webhooks as fast as ``concurrency`` connections allow."""
        queue = list(range(count))
        out: list[Sent] = []

        async def worker() -> None:
            while queue:
                i = queue.pop(0)
                out.append(await self.send(pick(i), retries=3))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return out

    async def close(self) -> None:
        await self.http.aclose()


JOB_COLUMNS = """id::text AS id, tenant_id, ticket_id, status, outcome, attempts, error,
    extract(epoch FROM received_at) AS received, extract(epoch FROM finished_at) AS finished,
    extract(epoch FROM started_at) AS started, stage_timings, note_id"""


async def fetch_jobs(db: Database, ids: list[str]) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(db.owner_url)
    try:
        rows = await conn.fetch(
            f"SELECT {JOB_COLUMNS} FROM enhancements WHERE id = ANY($1::uuid[])", ids
        )
        out = []
        for r in rows:
            row = dict(r)
            if isinstance(row.get("stage_timings"), str):
                row["stage_timings"] = json.loads(row["stage_timings"])
            out.append(row)
        return out
    finally:
        await conn.close()


async def wait_terminal(
    db: Database, ids: list[str], timeout_s: float, on_progress: Any = None
) -> list[dict[str, Any]]:
    """Poll until every job is completed/failed (or the timeout); returns the rows."""
    import asyncpg

    deadline = time.monotonic() + timeout_s
    conn = await asyncpg.connect(db.owner_url)
    try:
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM enhancements WHERE id = ANY($1::uuid[]) "
                "AND status IN ('completed', 'failed')",
                ids,
            )
            if on_progress is not None:
                await on_progress(done)
            if done >= len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
    finally:
        await conn.close()
    return await fetch_jobs(db, ids)


def e2e_seconds(rows: list[dict[str, Any]]) -> list[float]:
    return [
        float(r["finished"]) - float(r["received"])
        for r in rows
        if r["status"] == "completed" and r["finished"] is not None
    ]


def stage_breakdown(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """p50/p95 seconds of each stage: waiting to be claimed, context, synthesis, write-back."""
    stages: dict[str, list[float]] = {"queued": [], "context": [], "synthesis": [], "writeback": []}
    for r in rows:
        if r["status"] != "completed":
            continue
        if r.get("started") is not None:
            stages["queued"].append(float(r["started"]) - float(r["received"]))
        for key in ("context", "synthesis", "writeback"):
            value = (r.get("stage_timings") or {}).get(key)
            if value is not None:
                stages[key].append(float(value))
    return {k: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for k, v in stages.items()}


def steady_rate(rows: list[dict[str, Any]], low: float = 0.1, high: float = 0.9) -> float | None:
    """Completions per second between the ``low`` and ``high`` fractions of completions."""
    ends = sorted(float(r["finished"]) for r in rows if r["finished"] is not None)
    if len(ends) < 10:
        return None
    i, j = int(len(ends) * low), int(len(ends) * high) - 1
    span = ends[j] - ends[i]
    return (j - i) / span if span > 0 else None


def service_env(
    db: Database, *, llm_url: str = "http://127.0.0.1:9", **overrides: str
) -> dict[str, str]:
    env = {
        "AI_AGENTS_DATABASE_URL": db.service_url,
        "AI_AGENTS_ENCRYPTION_KEYS": db.encryption_keys,
        "AI_AGENTS_ADMIN_TOKEN": db.admin_token,
        "AI_AGENTS_DATA_DIR": str(db.data_dir),
        "AI_AGENTS_LLM_BASE_URL": f"{llm_url}/api/v1",
        "AI_AGENTS_SDP_ALLOW_LOOPBACK": "true",  # the SDP simulator listens on 127.0.0.1
        "AI_AGENTS_LLM_API_KEY": TEST_LLM_KEY,
        "AI_AGENTS_LOG_LEVEL": "INFO",
        # Workers import `benchmarks.*` deployments (not an installed package).
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def apply_env(env: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith("AI_AGENTS_")]:
        del os.environ[key]
    os.environ.update(env)
    from pipeline.core.settings import get_settings

    get_settings.cache_clear()


# -- processes -------------------------------------------------------------------------------
def classify(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
        name = proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "gone"
    head = cmd[0] if cmd else name
    if "postgres" in name or "postgres" in head:
        return "postgres"
    if name == "haproxy" or head.endswith("/haproxy"):
        return "haproxy"
    if head.startswith("ray::ServeReplica"):
        return "replica:" + head.split(":")[-1].split(".")[0].strip()
    if head.startswith("ray::ProxyActor"):
        return "serve proxy"
    if head.startswith("ray::ServeController"):
        return "serve controller"
    if head.startswith("ray::TenantRateLimiter"):
        return "rate limiter actors"
    if head.startswith("ray::IDLE"):
        return "ray idle workers"
    if head.startswith(("ray::HAProxy", "ray::JobSupervisor")):
        return head[5:].split(".")[0].split(" ")[0]
    if head.startswith("ray::DashboardAgent"):
        return "ray dashboard"
    if head.startswith("ray::RuntimeEnvAgent"):
        return "ray runtime-env agent"
    if head.startswith("ray::"):
        return "ray actor/worker"
    joined = " ".join(cmd)
    if "benchmarks.bare_server" in joined:
        return "bare uvicorn"
    if "benchmarks.pipeline_floor" in joined:
        return "floor process"
    if "benchmarks.intake_floor" in joined:
        return "intake floor"
    if "benchmarks.loadgen" in joined:
        return "load generator"
    if "dashboard" in joined:
        return "ray dashboard"
    if any(
        part in joined
        for part in (
            "gcs_server",
            "raylet",
            "ray/_private",
            "ray/autoscaler",
            "runtime_env",
            "log_monitor",
            "resource_tracker",
        )
    ):
        return "ray core"
    if proc.pid == os.getpid():
        return "driver+simulators"
    return "other:" + (Path(head).name or name)


class ProcessSampler:
    """Samples CPU time and RSS of this process tree plus PostgreSQL every ``interval_s``.

    CPU of a process is counted from the first time it is seen in a window (or from its start
    when it appears mid-window); a process that dies between samples loses at most one interval.
    """

    def __init__(
        self,
        postmaster_pid: int | None = None,
        *,
        interval_s: float = 0.5,
        exclude: Iterable[int] = (),
    ) -> None:
        self.postmaster_pid = postmaster_pid
        self.interval_s = interval_s
        self.exclude = set(exclude)
        self._procs: dict[int, psutil.Process] = {}
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._kind: dict[int, str] = {}
        self._peak_rss = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._window_open = False

    def processes(self) -> list[psutil.Process]:
        roots = [psutil.Process()]
        if self.postmaster_pid:
            with contextlib.suppress(psutil.NoSuchProcess):
                roots.append(psutil.Process(self.postmaster_pid))
        found: dict[int, psutil.Process] = {}
        for root in roots:
            found[root.pid] = root
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in root.children(recursive=True):
                    found[child.pid] = child
        for pid in self.exclude:
            found.pop(pid, None)
        for pid, proc in list(found.items()):  # the profiler is not part of the system
            with contextlib.suppress(psutil.Error):
                if proc.name() == "py-spy":
                    del found[pid]
        # Keep the cached Process objects (cpu_times needs the same object across samples).
        out = []
        for pid, proc in found.items():
            cached = self._procs.get(pid)
            if cached is None or not cached.is_running():
                self._procs[pid] = cached = proc
            out.append(cached)
        return out

    def _sample(self, first: bool = False) -> None:
        rss = 0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                cpu = times.user + times.system
                rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            with self._lock:
                if proc.pid not in self._base:
                    self._base[proc.pid] = cpu if first else 0.0
                    self._kind[proc.pid] = classify(proc)
                self._last[proc.pid] = cpu
        with self._lock:
            self._peak_rss = max(self._peak_rss, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start_window(self) -> None:
        """Begin counting CPU from now (processes alive now count from their current time)."""
        with self._lock:
            self._base.clear()
            self._last.clear()
            self._peak_rss = 0
        self._sample(first=True)
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")
            self._thread.start()

    def end_window(self) -> dict[str, Any]:
        self._sample()
        with self._lock:
            per_kind: dict[str, float] = {}
            for pid, last in self._last.items():
                kind = self._kind.get(pid, "?")
                per_kind[kind] = per_kind.get(kind, 0.0) + max(0.0, last - self._base[pid])
            return {
                "cpu_s": sum(per_kind.values()),
                "cpu_by_kind": per_kind,
                "peak_rss_bytes": self._peak_rss,
            }

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    def memory(self, *, pss: bool = True) -> dict[str, Any]:
        """RSS (and PSS, which splits shared pages fairly) per kind of process, now."""
        by_kind: dict[str, dict[str, int]] = {}
        for proc in self.processes():
            try:
                kind = classify(proc)
                info = proc.memory_full_info() if pss else proc.memory_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            entry = by_kind.setdefault(kind, {"rss": 0, "pss": 0, "count": 0})
            entry["rss"] += info.rss
            entry["pss"] += getattr(info, "pss", 0)
            entry["count"] += 1
        return {
            "rss_bytes": sum(e["rss"] for e in by_kind.values()),
            "pss_bytes": sum(e["pss"] for e in by_kind.values()),
            "by_kind": by_kind,
        }


# -- Ray + Serve in this process -------------------------------------------------------------
def isolated_serve_env() -> dict[str, str]:
    """Ports and paths that Serve's direct-ingress/HAProxy mode would otherwise take from fixed
    defaults (8404, 9101, /tmp/haproxy-serve, 30000-31000), so a run cannot collide with
    another Ray instance on the machine."""
    base = 33000 + (os.getpid() % 40) * 50
    return {
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(base),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(base + 24),
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(base + 25),
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(base + 49),
        **haproxy_private_environment(),
    }


def serve_instance_details() -> dict[str, Any]:
    import ray
    from ray.serve.context import _get_global_client

    return ray.get(_get_global_client()._controller.get_serve_instance_details.remote())


def replica_pids(deployment: str | None = None, app: str = APP_NAME) -> dict[str, list[int]]:
    """Live replica PIDs per deployment, from the Serve controller (no dashboard needed)."""
    details = serve_instance_details()
    out: dict[str, list[int]] = {}
    deployments = details.get("applications", {}).get(app, {}).get("deployments", {})
    for name, info in deployments.items():
        if deployment and name != deployment:
            continue
        out[name] = [
            r["pid"]
            for r in info.get("replicas", [])
            if r.get("pid") and r.get("state") == "RUNNING"
        ]
    return out


def ray_init_kwargs(
    *, num_cpus: int | None, dashboard: bool, dashboard_port: int | None = None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "namespace": APP_NAME,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "include_dashboard": dashboard,
    }
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    if dashboard:
        kwargs.update(dashboard_host="127.0.0.1", dashboard_port=dashboard_port or free_port())
    return kwargs


class RayServe:
    """Ray (a fresh local cluster) + Serve in this process."""

    def __init__(
        self, env: dict[str, str], *, num_cpus: int | None = None, dashboard: bool = False
    ) -> None:
        self.env = env
        self.num_cpus = num_cpus
        self.dashboard = dashboard
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self) -> float:
        import ray
        from ray import serve

        started = time.monotonic()
        apply_env(self.env)
        if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1":
            os.environ.update(isolated_serve_env())
        ray.init(**ray_init_kwargs(num_cpus=self.num_cpus, dashboard=self.dashboard))
        serve.start(http_options={"host": "127.0.0.1", "port": self.http_port})
        return time.monotonic() - started

    def deploy(self, app: Any = None) -> float:
        from ray import serve

        from serve_app.app_builder import build_app

        started = time.monotonic()
        serve.run(app if app is not None else build_app(), name=APP_NAME, route_prefix="/")
        return time.monotonic() - started

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()  # kills the local cluster (no 20-200 s graceful drains)


@dataclass
class Rig:
    """Everything a pipeline benchmark runs against, started by ``pipeline_rig``."""

    db: Database
    sims: Simulators
    tenants: list[Tenant]
    seeded: dict[str, int]
    ray_serve: RayServe
    ray_start_s: float
    sender: TicketSender


@contextlib.asynccontextmanager
async def pipeline_rig(
    args: argparse.Namespace,
    prefix: str,
    tenant_count: int,
    *,
    dashboard: bool = False,
    start_ray: bool = True,
    **env: str,
) -> AsyncIterator[Rig]:
    """Database, simulators (``args.llm_latency``/``jitter``/``sdp_latency_ms``), seeded
    tenants, and Ray + Serve started (not yet deployed); all torn down on exit.
    ``start_ray=False`` (the pipeline floor): the port and environment are reserved but Ray is
    not started; whatever the caller starts on ``rig.ray_serve.url`` receives the webhooks."""
    data_dir = make_data_dir(prefix)
    sims = Simulators(
        llm_latency_s=args.llm_latency,
        llm_jitter_pct=args.jitter,
        sdp_latency_ms=args.sdp_latency_ms,
    )
    ray_serve: RayServe | None = None
    sender: TicketSender | None = None
    try:
        db = await start_database(data_dir)
        tenants = await create_tenants(db, tenant_count, prefix, sdp_url=sims.sdp_url, sims=sims)
        seeded = await seed_knowledge(db, tenants)
        ray_serve = RayServe(
            service_env(db, llm_url=sims.llm_url, **env),
            num_cpus=getattr(args, "num_cpus", 0) or None,
            dashboard=dashboard,
        )
        ray_start_s = ray_serve.start() if start_ray else 0.0
        sender = TicketSender(ray_serve.url, sims)
        yield Rig(db, sims, tenants, seeded, ray_serve, ray_start_s, sender)
    finally:
        if sender is not None:
            await sender.close()
        if ray_serve is not None:
            ray_serve.stop()
        sims.stop()
        remove_data_dir(data_dir)


# -- Ray + Serve in a child process (intake configurations) ----------------------------------
@dataclass
class ServeChild:
    """``python -m benchmarks.stack serve`` with its own environment; ready when it prints one
    JSON line (url, replica PIDs, direct-ingress ports); stopped by closing its stdin."""

    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 180) -> dict[str, Any]:
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AI_AGENTS_", "RAY_SERVE_", "RAY_USE_"))
        }
        full_env.update(self.env)
        log = open(self.log_path or os.devnull, "w")  # noqa: SIM115 - closed with the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.stack", "serve", *self.args],
            cwd=REPO,
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                tail = ""
                if self.log_path and self.log_path.exists():
                    tail = "\n".join(self.log_path.read_text().splitlines()[-25:])
                self.stop(5)
                raise RuntimeError(f"serve child exited ({self.proc.poll()}):\n{tail}")
            if line.startswith("{"):
                self.info = json.loads(line)
                return self.info
        raise TimeoutError("serve child did not become ready")

    def stop(self, timeout_s: float = 60) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def _child_main(argv: list[str]) -> None:
    """Entry point of ServeChild: start Ray + Serve with the intake app, report, wait."""
    parser = argparse.ArgumentParser(prog="benchmarks.stack serve")
    parser.add_argument("--graph", choices=["ingress", "full"], default="ingress")
    parser.add_argument("--replicas", type=int, default=0, help="0: product autoscaling")
    parser.add_argument("--max-ongoing", type=int, default=0, help="0: product value")
    parser.add_argument("--num-cpus", type=int, default=0)
    parser.add_argument("--async-state", action="store_true")
    args = parser.parse_args(argv)
    import ray
    from ray import serve

    from benchmarks.apps import build_intake_app

    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # Ray prints chatter on stdout; keep it for the ready line
    port = free_port()
    ray.init(**ray_init_kwargs(num_cpus=args.num_cpus or None, dashboard=False))
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        build_intake_app(
            args.graph,
            replicas=args.replicas,
            max_ongoing=args.max_ongoing,
            async_state=args.async_state,
        ),
        name=APP_NAME,
        route_prefix="/",
    )
    pids = replica_pids()
    low = int(os.environ.get("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "30000"))
    high = int(os.environ.get("RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT", "31000"))
    from ray.serve._private.constants import RAY_SERVE_ENABLE_DIRECT_INGRESS as direct

    direct_ports = sorted(
        {
            c.laddr.port
            for pid in pids.get("Ingress", [])
            for c in psutil.Process(pid).net_connections("tcp")
            if direct and c.status == psutil.CONN_LISTEN and low <= c.laddr.port <= high
        }
    )
    real_stdout.write(
        json.dumps({"url": f"http://127.0.0.1:{port}", "pids": pids, "direct_ports": direct_ports})
        + "\n"
    )
    real_stdout.flush()
    sys.stdin.read()  # parent closes stdin to stop us
    ray.shutdown()


@contextlib.contextmanager
def child_process(
    cmd: list[str], env: dict[str, str], log_path: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    full_env.update(env)
    with open(log_path or os.devnull, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log, stderr=log)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def wait_http(url: str, timeout_s: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer")
        time.sleep(0.2)


async def owner_count(db: Database, sql: str, *args: Any) -> Any:
    import asyncpg

    conn = await asyncpg.connect(db.owner_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        _child_main(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m benchmarks.stack serve [--graph ingress|full] ...")

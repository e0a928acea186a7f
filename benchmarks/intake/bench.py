"""Benchmark 1 — webhook intake: Ray Serve configurations against bare uvicorn, in one run.

    python -m benchmarks.intake --seconds 4 --reps 2 --passes 2 --clients 32

Every request is a signed webhook (HMAC-SHA256 over the raw body) for a distinct ticket that is
committed (INSERT + NOTIFY) before its 202. The load generator is a separate process
(``benchmarks.rig.loadgen``, aiohttp on uvloop, ``--clients`` keep-alive connections) whose CPU is
reported, because on two cores it competes with the server. Each configuration gets a fresh
Ray + Serve in a child process (Serve reads its feature flags at import), a warm-up, then
``--reps`` measured repetitions of ``--seconds``; the list is run ``--passes`` times in
alternating order (forward, reverse) so drifting background load on the shared machine does not
favour one end of the list, and the table shows medians over all repetitions. After each pass
the number of job rows is compared with the number of 202s (every acknowledged webhook is
durable). Each pass also runs one open-loop repetition at ``--rate`` webhooks/s (latency at a
given load rather than at saturation; counted from each webhook's due time). Server CPU per
webhook (every process of the run except the load generator) is the
figure least disturbed by other users of the machine; throughput and latency are more so.

Configurations (``--configs``, comma-separated):
  bare              the same ``create_api`` app under bare uvicorn (uvloop + httptools)
  proxy             Serve default: Serve proxy actor -> Ingress replica (product options)
  proxy-sameloop    + user code and router on the replica's main loop, buffered access logs
  direct            RAY_SERVE_ENABLE_DIRECT_INGRESS=1, client -> the replica's own uvicorn
  direct-tput       RAY_SERVE_THROUGHPUT_OPTIMIZED=1 (direct ingress + same-loop + no stderr
                    logs + gRPC between deployments + frozen GC), client -> replica port
  haproxy           RAY_SERVE_ENABLE_HA_PROXY=1 (HAProxy on the HTTP port -> replica port)
  haproxy-tput      HAProxy + RAY_SERVE_THROUGHPUT_OPTIMIZED=1
  haproxy-tput-nometrics  the same with RAY_SERVE_HAPROXY_METRICS_ENABLED=0
  direct-tput-2r    direct-tput with 2 Ingress replicas (clients split over both ports)
  haproxy-tput-2r   haproxy-tput with 2 Ingress replicas (fixed, no autoscaling)
  haproxy-tput-stderr    haproxy-tput + RAY_SERVE_LOG_TO_STDERR=1: THROUGHPUT_OPTIMIZED turns
                    it off, which routes the replica's stderr (our JSON log lines) through
                    Serve's StreamToLogger — a traceback.extract_stack() per line
  haproxy-tput-stderr-2r the same with 2 Ingress replicas
  haproxy-tput-full the same as haproxy-tput with the whole pipeline deployed and working
                    (the jobs accepted are processed: LLM simulator 2 s, SDP simulator)
  bare-end          bare uvicorn again at the end (drift check; merged into the baseline)
  floor             the intake floor (``benchmarks.rig.intake_floor``): uvicorn + asyncpg, a
                    constant-time token check, one INSERT with synchronous commit; token-mode
                    tenants. Every config is also reported as a ratio to it.
  bare-token        the product app (``create_api``) under bare uvicorn, token-mode webhooks:
                    what the app costs without Serve, HAProxy or Ray
  serve-floor       the floor's bare ASGI app deployed as the Serve ingress the way
                    ``ai-agents serve`` runs it (HAProxy + THROUGHPUT_OPTIMIZED +
                    LOG_TO_STDERR=1): what Serve itself costs per webhook, i.e. the best
                    any app can do through the product's ingress
  serve-token       what ``ai-agents serve`` runs (HAProxy + THROUGHPUT_OPTIMIZED +
                    LOG_TO_STDERR=1), token-mode webhooks, pipeline idle
  busy-pipeline     the same with the whole pipeline deployed and busy: ``--backlog`` real
                    tickets (created in the SDP simulator, LLM simulator 2 s) are enqueued
                    before the measurement, and every webhook the load generator sends is a
                    job too (its ticket does not exist in the SDP simulator, so it ends
                    ``failed`` at write-back after context and the LLM call); the table shows
                    what the pipeline finished per second while intake was measured.
                    The Dispatcher's intake priority is at its default (above 50
                    webhooks/s only 2 jobs in flight, pools held); ``--backlog 0`` is the
                    pipeline working only on what arrives.
  busy-pipeline-2r  the same with 2 Ingress replicas (HAProxy balances over both)
  busy-pipeline-nice0  the same with AI_AGENTS_PIPELINE_NICE=0: pipeline replicas at the
                    Ingress's CPU priority
  busy-pipeline-nopriority  the same with AI_AGENTS_INTAKE_PRIORITY_RATE=0: the Dispatcher
                    hands out work at full capacity during the storm and the pools scale on
                    the backlog it makes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import REPO
from benchmarks.intake import busy as intake_busy
from benchmarks.intake.configs import CONFIGS, DEFAULT_CONFIGS, Config
from benchmarks.intake.report import Rep, aggregate, report
from benchmarks.rig.process_sampler import ProcessSampler
from benchmarks.rig.profiling import py_spy_available, start_record, summarise
from benchmarks.rig.report import fmt, machine_info, run_script
from benchmarks.rig.serve_child import ServeChild, child_process, wait_http
from benchmarks.rig.stack import service_env
from core.ports import free_port
from local_stack.database import (
    Database,
    make_data_dir,
    owner_count,
    remove_data_dir,
    start_database,
)
from local_stack.ray_serve import isolated_serve_env
from local_stack.simulators import Simulators
from local_stack.tenants import Tenant, create_tenants


def run_loadgen(spec: dict[str, Any], workdir: Path, sampler: ProcessSampler) -> Rep:
    spec_path = workdir / f"spec-{spec['prefix']}.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.rig.loadgen", str(spec_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler.exclude.add(proc.pid)
    sampler.start_window()
    out, err = proc.communicate(timeout=spec["seconds"] + spec.get("warmup_s", 0) + 120)
    window = sampler.end_window()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err[-2000:]}")
    result = json.loads(out)
    by_kind = {k: v for k, v in window["cpu_by_kind"].items() if k != "driver+simulators"}
    return Rep(
        throughput=result["throughput"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        statuses=result["statuses"],
        issued=result["issued"],
        accepted=result["accepted"],
        loadgen_cpu_s=result["cpu_s"],
        loadgen_wall_s=result["wall_s"],
        server_cpu_s=sum(by_kind.values()),
        cpu_by_kind=by_kind,
    )


async def measure_config(
    cfg: Config,
    args: argparse.Namespace,
    db: Database,
    tenant_sets: dict[str, list[Tenant]],
    env: dict[str, str],
    workdir: Path,
    sampler: ProcessSampler,
    tag: str,
    profile: bool,
    sims: Simulators | None = None,
) -> dict[str, Any]:
    """One pass of one configuration: start it, warm up, ``--reps`` measured repetitions."""
    import asyncpg

    tenants = tenant_sets[cfg.auth]

    conn = await asyncpg.connect(db.owner_url)
    await conn.execute("TRUNCATE enhancements CASCADE")
    await conn.execute("VACUUM ANALYZE enhancements")
    await conn.close()
    log_path = workdir / f"{cfg.name}.log"
    started = time.monotonic()
    child: ServeChild | None = None
    bare_cm: contextlib.AbstractContextManager[Any] | None = None  # the bare or floor server
    pids: dict[str, list[int]] = {}
    if cfg.kind == "bare":
        port = free_port()
        bare_cm = child_process(
            [
                sys.executable,
                "-m",
                "benchmarks.intake.bare_server",
                "--port",
                str(port),
            ],
            env,
            log_path,
        )
        bare_proc = bare_cm.__enter__()
        pids = {"bare": [bare_proc.pid]}
        wait_http(f"http://127.0.0.1:{port}/health")
        urls = [f"http://127.0.0.1:{port}"]
    elif cfg.kind == "floor":
        bare_cm = intake_busy.intake_floor(db, tenants, env, workdir, log_path)
        url, pid = bare_cm.__enter__()
        pids = {"floor": [pid]}
        urls = [url]
    else:
        child_env = {**env, **isolated_serve_env(), **cfg.env}
        if cfg.graph == "floor":
            child_env.update(intake_busy.floor_env(db, tenants, workdir))
        child_args = ["--graph", cfg.graph]
        if cfg.replicas:
            child_args += ["--replicas", str(cfg.replicas)]
        child = ServeChild(child_env, child_args, log_path)
        info = child.start()
        pids = info["pids"]
        if cfg.target == "direct":
            urls = [f"http://127.0.0.1:{p}" for p in info["direct_ports"]]
            if not urls:
                raise RuntimeError(f"{cfg.name}: no direct-ingress port found")
        else:
            urls = [info["url"]]
    startup_s = time.monotonic() - started
    try:
        base = {
            "urls": urls,
            "url": urls[0],
            "tenants": [t.spec() for t in tenants],
            "clients": args.clients,
            "max_requests": args.max_requests,
            "auth": cfg.auth,
        }
        backlog = None
        if cfg.backlog and args.backlog > 0:
            assert sims is not None
            backlog = await intake_busy.enqueue_backlog(
                urls[0], sims, tenant_sets["hmac"], args.backlog
            )
        measuring_since = time.time()
        # Warm-up: connections, tenant cache, pools, JIT-free but cache-warm paths.
        run_loadgen({**base, "seconds": args.warmup, "prefix": f"{tag}-w"}, workdir, sampler)
        reps = []
        for rep in range(args.reps):
            reps.append(
                run_loadgen(
                    {**base, "seconds": args.seconds, "warmup_s": 0.5, "prefix": f"{tag}-r{rep}"},
                    workdir,
                    sampler,
                )
            )
        open_loop = None
        if args.rate > 0:
            open_loop = run_loadgen(
                {
                    **base,
                    "seconds": args.seconds,
                    "warmup_s": 0.5,
                    "rate": args.rate,
                    "prefix": f"{tag}-o",
                },
                workdir,
                sampler,
            )
        profile_result = None
        if profile and py_spy_available():
            profile_result = profile_config(cfg, base, args, workdir, sampler, pids)
        rows = await owner_count(
            db, "SELECT count(*) FROM enhancements WHERE ticket_id LIKE $1", f"{tag}-r%"
        )
        pipeline = (
            await intake_busy.pipeline_progress(db, measuring_since)
            if cfg.graph == "full"
            else None
        )
        if pipeline is not None:
            pipeline["nice"] = intake_busy.niceness(pids)
    finally:
        if child is not None:
            child.stop()
        if bare_cm is not None:
            bare_cm.__exit__(None, None, None)
    return {
        "reps": reps,
        "rows": rows,
        "startup_s": startup_s,
        "pids": pids,
        "profile": profile_result,
        "open": open_loop,
        "backlog": backlog,
        "pipeline": pipeline,
    }


def profile_config(
    cfg: Config,
    base: dict[str, Any],
    args: argparse.Namespace,
    workdir: Path,
    sampler: ProcessSampler,
    pids: dict[str, list[int]],
) -> dict[str, Any]:
    """One extra (unmeasured) repetition with py-spy on the Ingress replica(s), the Serve proxy
    and the bare server."""
    import psutil

    targets: dict[str, int] = {}
    for name in ("Ingress", "bare"):
        for i, pid in enumerate(pids.get(name, [])):
            targets[f"{name}{i or ''}"] = pid
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if (
            cmd
            and cmd[0].startswith("ray::ProxyActor")
            and proc.pid in {p.pid for p in sampler.processes()}
        ):
            targets["ServeProxy"] = proc.pid
    seconds = max(3.0, args.seconds)
    recorders = {
        name: start_record(pid, seconds, workdir / f"{cfg.name}-{name}.txt")
        for name, pid in targets.items()
    }
    run_loadgen({**base, "seconds": seconds, "prefix": f"{cfg.name}-prof"}, workdir, sampler)
    out = {}
    for name, rec in recorders.items():
        rec.wait(30)
        summary = summarise(workdir / f"{cfg.name}-{name}.txt")
        out[name] = summary
        if args.profile_dir:
            dest = Path(args.profile_dir)
            dest.mkdir(parents=True, exist_ok=True)
            src = workdir / f"{cfg.name}-{name}.txt"
            if src.exists():
                (dest / src.name).write_text(src.read_text())
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    machine = machine_info()
    args.nproc = machine["nproc"]
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configs: {unknown}; known: {sorted(CONFIGS)}")
    data_dir = make_data_dir("intake")
    workdir = Path(tempfile.mkdtemp(prefix="aab-intake-work-", dir="/tmp"))
    sims = None
    try:
        db = await start_database(data_dir)
        needs_pipeline = any(CONFIGS[n].graph == "full" for n in names)
        if needs_pipeline:
            sims = Simulators(llm_latency_s=2.0, llm_jitter_pct=20, sdp_latency_ms=50)
        tenants = await create_tenants(
            db,
            args.tenants,
            "intake",
            sdp_url=sims.sdp_url if sims else "http://127.0.0.1:9",
            sims=sims,
        )
        tenant_sets = {"hmac": tenants}
        if any(CONFIGS[n].auth == "token" for n in names):
            tenant_sets["token"] = await create_tenants(
                db,
                args.tenants,
                "intake-tok",
                sdp_url=sims.sdp_url if sims else "http://127.0.0.1:9",
                sims=sims,
                webhook_auth="token",
            )
        env = service_env(
            db,
            llm_url=sims.llm_url if sims else "http://127.0.0.1:9",
            AI_AGENTS_PER_TENANT_INFLIGHT="64",
        )
        sampler = ProcessSampler(db.postmaster_pid)
        passes: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for k in range(args.passes):
            # Alternate the order (forward, reverse, ...) so a slow drift in the machine's
            # load (other users of these two cores) does not favour the configs run first.
            order = names if k % 2 == 0 else list(reversed(names))
            for name in order:
                cfg = CONFIGS[name]
                print(f"[intake] pass {k + 1}: {name}: {cfg.label} …", file=sys.stderr, flush=True)
                one = await measure_config(
                    cfg,
                    args,
                    db,
                    tenant_sets,
                    env,
                    workdir,
                    sampler,
                    tag=f"{name}-p{k}",
                    profile=k == 0 and name in args.profile,
                    sims=sims,
                )
                passes[name].append(one)
                print(
                    f"[intake] {name}: {'/'.join(fmt(r.throughput, 0) for r in one['reps'])} req/s",
                    file=sys.stderr,
                    flush=True,
                )
        results = [aggregate(CONFIGS[name], passes[name], args.nproc) for name in names]
        sampler.stop()
    finally:
        if sims is not None:
            sims.stop()
        remove_data_dir(data_dir)
        if not args.keep_workdir:
            remove_data_dir(workdir)
    return {"machine": machine, "args": vars(args), "results": results}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.intake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="per repetition")
    parser.add_argument("--reps", type=int, default=2, help="per configuration and pass")
    parser.add_argument(
        "--passes",
        type=int,
        default=2,
        help="run the configuration list this many times, alternating order",
    )
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--rate",
        type=float,
        default=500.0,
        help="open-loop repetition per pass at this rate (0: none)",
    )
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument(
        "--backlog",
        type=int,
        default=1000,
        help="busy-pipeline: real tickets enqueued before measuring",
    )
    parser.add_argument("--max-requests", type=int, default=50_000, help="cap per repetition")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--profile", default="", help="configs to py-spy (comma-separated)")
    parser.add_argument("--profile-dir", default="", help="keep the raw py-spy stacks here")
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument("--json", default="", help="write the results here")
    args = parser.parse_args(argv)
    args.profile = [p for p in args.profile.split(",") if p]
    return args


def main(argv: list[str] | None = None) -> None:
    run_script(parse_args, main_async, report, argv)

"""Ray + Serve in a child process (``python -m benchmarks.rig.serve_child``), so each intake
configuration gets the Ray/Serve feature flags it names (they are read at import); and other
child processes a benchmark starts and waits for."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks import REPO
from core.ports import free_port
from local_stack.ray_serve import (
    deploy_app,
    ray_init_kwargs,
    replica_pids,
    start_ray,
    start_serve,
    stop_ray,
)


@dataclass
class ServeChild:
    """``python -m benchmarks.rig.serve_child`` with its own environment; ready when it prints one
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
            [sys.executable, "-m", "benchmarks.rig.serve_child", *self.args],
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


def main(argv: list[str]) -> None:
    """Entry point of ServeChild: start Ray + Serve with the intake app, report, wait."""
    parser = argparse.ArgumentParser(prog="benchmarks.rig.serve_child")
    parser.add_argument("--graph", choices=["ingress", "full", "floor"], default="ingress")
    parser.add_argument("--replicas", type=int, default=0, help="0: product autoscaling")
    parser.add_argument("--max-ongoing", type=int, default=0, help="0: product value")
    parser.add_argument("--num-cpus", type=int, default=0)
    args = parser.parse_args(argv)
    from benchmarks.rig.apps import build_intake_app

    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # Ray prints chatter on stdout; keep it for the ready line
    port = free_port()
    start_ray(**ray_init_kwargs(num_cpus=args.num_cpus or None, dashboard=False))
    start_serve(port)
    deploy_app(build_intake_app(args.graph, replicas=args.replicas, max_ongoing=args.max_ongoing))
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
    stop_ray()


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


if __name__ == "__main__":
    main(sys.argv[1:])

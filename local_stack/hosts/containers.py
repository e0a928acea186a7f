"""A host's long-running process, restarted as the kubelet restarts a container.

``Container`` runs one command inside a host's namespace (``ip netns exec``), its output in a
log file of the run, its environment given whole (nothing of the caller's leaks in), in a
session of its own. With ``restart`` it is started again after it exits, after a back-off
like the kubelet's (doubling from ``backoff_s``, reset after ``reset_after_s`` of running),
until ``stop``: that is what happens to a KubeRay pod's Ray container when ``ray start
--block`` returns because one of Ray's processes died. With ``own_pids`` (the Ray hosts) it
runs in a PID namespace of its own, as a pod does (``netns.pod_argv``): every process it
started dies with it, and it cannot see another host's processes.

Secrets reach a container as files (``AI_AGENTS_SECRETS_DIR``, ``RAY_AUTH_TOKEN_PATH``),
never on its command line or in its environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.hosts.netns import exec_argv, pod_argv

log = logging.getLogger(__name__)


@dataclass
class Container:
    name: str
    namespace: str
    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    restart: bool = True
    own_pids: bool = False
    backoff_s: float = 2.0
    max_backoff_s: float = 20.0
    reset_after_s: float = 30.0
    starts: int = 0
    exits: list[tuple[float, int]] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Container:
        self._stopping.clear()
        self._launch()
        if self.restart:
            self._thread = threading.Thread(
                target=self._supervise, name=f"container-{self.name}", daemon=True
            )
            self._thread.start()
        return self

    def _launch(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                (pod_argv if self.own_pids else exec_argv)(self.namespace, self.argv),
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def _supervise(self) -> None:
        backoff = self.backoff_s
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            started = time.monotonic()
            code = proc.wait()
            self.exits.append((time.time(), code))
            if self._stopping.is_set():
                return
            if time.monotonic() - started > self.reset_after_s:
                backoff = self.backoff_s
            log.info("container %s exited (%s); restart in %.0f s", self.name, code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff_s)
            self._launch()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout_s: float) -> int:
        assert self._proc is not None
        return self._proc.wait(timeout_s)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Signal the container's whole session (the command and what it started)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def stop(self, grace_s: float = 5.0) -> None:
        self._stopping.set()
        if self._proc is not None and self._proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self._proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(5)
        if self._thread is not None:
            self._thread.join(5)


def write_secret(directory: Path, name: str, value: str) -> Path:
    """One secret as a file readable only by its owner (what a Secret volume projects)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return path

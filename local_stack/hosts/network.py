"""Hosts as network namespaces on one private subnet, wired to a bridge of their own.

Layout of one run (``<p>`` = ``aah<id>``, the prefix this module owns):

- ``<p>-sw``: the switch, a namespace holding only the bridge ``br0``;
- ``<p>-<host>``: one namespace per host, its ``eth0`` a veth whose other end is a port of
  ``br0``, with the host's address on ``SUBNET`` and loopback up.

Nothing touches the machine's own network namespace: no interface, route or rule is added
there, so every packet between the hosts stays inside namespaces this run created, and two runs
(same subnet) never see each other. ``Network.destroy`` kills every process left in the run's
namespaces and deletes them; ``sweep_stale`` does the same for runs whose owner process died
(a crashed or killed test), keyed on the prefix and the owner recorded in ``STATE_DIR``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "aah"
SUBNET = ipaddress.ip_network("10.213.27.0/24")
STATE_DIR = Path("/run/ai-agents-hosts")
log = logging.getLogger(__name__)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def namespaces() -> list[str]:
    out = _ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def namespace_pids(namespace: str) -> list[int]:
    result = _ip("netns", "pids", namespace, check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def kill_namespace_processes(namespace: str, *, grace_s: float = 0.0) -> list[int]:
    """Every process inside ``namespace``: SIGTERM (when ``grace_s``), then SIGKILL; returns
    the pids found."""
    found = namespace_pids(namespace)
    signals = [(signal.SIGTERM, grace_s)] if grace_s else []
    for sig, wait_s in [*signals, (signal.SIGKILL, 5.0)]:
        alive = namespace_pids(namespace)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while namespace_pids(namespace) and time.monotonic() < deadline:
            time.sleep(0.1)
    return found


def _owner_alive(run: str) -> bool:
    try:
        record = json.loads((STATE_DIR / f"{run}.json").read_text())
        pid, started = int(record["pid"]), int(record["started"])
    except (OSError, ValueError, KeyError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat[stat.rindex(")") + 2 :].split()[19]) == started


def _process_start(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def sweep_stale() -> list[str]:
    """Delete the namespaces (and their processes) of runs whose owner is gone."""
    removed = []
    for name in namespaces():
        if not name.startswith(PREFIX) or "-" not in name:
            continue
        run = name.split("-", 1)[0]
        if _owner_alive(run):
            continue
        kill_namespace_processes(name)
        _ip("netns", "delete", name, check=False)
        removed.append(name)
    for record in STATE_DIR.glob(f"{PREFIX}*.json") if STATE_DIR.is_dir() else []:
        if not _owner_alive(record.stem):
            record.unlink(missing_ok=True)
    if removed:
        log.warning("removed %d stale host namespaces: %s", len(removed), ", ".join(removed))
    return removed


@dataclass
class Host:
    name: str
    ip: str
    namespace: str


@dataclass
class Network:
    """The switch and the hosts of one run; ``add_host`` wires one more at any time (the
    autoscaler's new nodes)."""

    run: str = field(default_factory=lambda: f"{PREFIX}{secrets.token_hex(2)}")
    hosts: dict[str, Host] = field(default_factory=dict)
    _next: int = 10

    @property
    def switch(self) -> str:
        return f"{self.run}-sw"

    def namespace(self, host: str) -> str:
        return f"{self.run}-{host}"

    def create(self) -> Network:
        sweep_stale()
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / f"{self.run}.json").write_text(
            json.dumps({"pid": os.getpid(), "started": _process_start(os.getpid())})
        )
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        return self

    def add_host(self, name: str) -> Host:
        if name in self.hosts:
            return self.hosts[name]
        if len(name) > 11:
            raise ValueError(f"host name {name!r} is longer than 11 characters")
        address = str(SUBNET[self._next])
        self._next += 1
        namespace = self.namespace(name)
        port = f"v-{name}"
        _ip("netns", "add", namespace)
        # both ends are created inside namespaces of the run: no interface in the root one
        _ip(
            "-n",
            self.switch,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            namespace,
        )
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", namespace, "addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        host = Host(name, address, namespace)
        self.hosts[name] = host
        return host

    def set_link(self, name: str, up: bool) -> None:
        """Cut (or restore) a host's cable: its switch port goes down."""
        _ip("-n", self.switch, "link", "set", f"v-{name}", "up" if up else "down")

    def destroy(self) -> None:
        for host in list(self.hosts.values()):
            kill_namespace_processes(host.namespace, grace_s=1.0)
        for name in [*(h.namespace for h in self.hosts.values()), self.switch]:
            _ip("netns", "delete", name, check=False)
        self.hosts.clear()
        (STATE_DIR / f"{self.run}.json").unlink(missing_ok=True)

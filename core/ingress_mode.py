"""How HTTP reaches the Ingress replica, and how Ray's log files rotate, for the Ray instance
this process starts itself (and, through the rendered manifests, for the KubeRay pods).

``proxy`` is Ray's default: Serve's proxy actor receives each request and forwards it to the
replica over Ray RPC. ``haproxy`` (our default) is Ray 2.60's HAProxy front with direct ingress
(each Ingress replica runs its own uvicorn) plus the throughput flags: no Ray RPC hop per
request, so far less CPU per webhook and per enhancement (docs/benchmarks/intake.md has
the figures).

Ray reads these variables once, in every process it spawns, so they must be in ``os.environ``
before ``ray.init``. Joining an existing cluster (``RAY_ADDRESS``), the cluster's own
environment decides; on KubeRay that is ``serve.ingressMode`` in the values.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from core.network.haproxy import write_launcher
from core.ports import free_port

IngressMode = Literal["proxy", "haproxy"]

# THROUGHPUT_OPTIMIZED alone turns LOG_TO_STDERR off, and Serve's stderr-to-logger shim then
# extracts a stack trace for every JSON log line; LOG_TO_STDERR=1 keeps our lines cheap.
# HAProxy's client timeout is an inactivity timeout (Serve's default: an hour); 30 s frees the
# connection of a client that stopped sending or reading. The headers and the start of the body
# are bounded by core/network/haproxy.py, which RAY_SERVE_HAPROXY_BINARY_PATH must name.
HAPROXY_FLAGS = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_LOG_TO_STDERR": "1",
    "RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S": "30",
}
# Where HAProxy connects to the replicas from, locally: its X-Forwarded-For is believed.
LOCAL_TRUSTED_PROXIES = "127.0.0.1/32,::1/128"


# Ray rotates its own components' logs (raylet, GCS, dashboard) at 512 MiB x 5 by default, but a
# worker's stdout/stderr (worker-*.out/.err, where a replica's JSON log lines go) only when
# RAY_ROTATION_MAX_BYTES is set in the environment: without it those files grow for as long as
# the replica lives. 64 MiB x 4 backups bounds each file to 320 MiB; at the soak's rate (5
# webhooks/s, docs/operations/running-for-months.md) a replica's file fills in days, not hours.
LOG_ROTATION = {
    "RAY_ROTATION_MAX_BYTES": str(64 * 2**20),
    "RAY_ROTATION_BACKUP_COUNT": "4",
}


def apply_log_rotation() -> None:
    """Export the rotation variables; ones the operator already set win."""
    for key, value in LOG_ROTATION.items():
        os.environ.setdefault(key, value)


def ingress_environment(mode: IngressMode, *, drain_s: float = 5.0) -> dict[str, str]:
    """The Ray Serve variables for ``mode``.

    ``drain_s`` replaces direct ingress's 30 s minimum drain on shutdown, which exists so
    load balancers on other nodes notice a replica leaving; here HAProxy runs on the same node.
    """
    if mode == "proxy":
        return {}
    return {
        **HAPROXY_FLAGS,
        **haproxy_private_environment(),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": f"{drain_s:g}",
        "AI_AGENTS_TRUSTED_PROXIES": LOCAL_TRUSTED_PROXIES,
    }


def haproxy_private_environment() -> dict[str, str]:
    """Ports, a state directory and the hardening launcher (``core/network/haproxy.py``) of
    HAProxy's own.

    HAProxy otherwise shares ``/tmp/haproxy-serve`` and ports 8404/9101 with any other Ray on
    the machine. The directory must be short: HAProxy nests a 56-character hash under it and
    caps socket paths at 97 bytes. Serve's fallback proxy (where HAProxy sends requests while
    no Ingress replica is ready) binds 8500/9500 with SO_REUSEPORT, so with a second
    HAProxy-mode Ray on the machine the kernel would hand some of our webhooks to the other
    instance; it gets private ports too.
    """
    state = Path(tempfile.mkdtemp(prefix="aa-hp", dir="/tmp"))
    atexit.register(shutil.rmtree, state, True)
    return {
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(state / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(state / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(state),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(state / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(state / "metrics.sock"),
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(write_launcher(state)),
    }


def apply_ingress_mode(mode: IngressMode, *, drain_s: float = 5.0) -> None:
    """Export the mode's variables; ones the operator already set win."""
    for key, value in ingress_environment(mode, drain_s=drain_s).items():
        os.environ.setdefault(key, value)

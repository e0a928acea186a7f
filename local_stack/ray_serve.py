"""A local Ray cluster and the Serve application on loopback, started and stopped.

Every local run starts Ray the same way: in the ``ai_agents`` namespace, without forwarding
worker logs to the driver, the dashboard (when wanted) on 127.0.0.1, and Serve's HTTP proxy on
127.0.0.1 at a port the caller chose. ``ray.init`` is always a fresh local cluster here; stopping
it with ``ray.shutdown`` kills it (no 20-200 s graceful drains) unless Serve is asked to shut
down first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

from actors.deployment_options import APP_NAME
from core.ingress_mode import apply_log_rotation, haproxy_private_environment
from core.ports import free_port
from local_stack.environment import apply_environment

__all__ = [
    "APP_NAME",
    "RayServe",
    "cluster_cpus",
    "deploy_app",
    "isolated_serve_env",
    "machine_cpus",
    "own_interpreter_first_on_path",
    "ray_init_kwargs",
    "replica_pids",
    "serve_instance_details",
    "start_ray",
    "start_serve",
    "stop_ray",
]


def ray_init_kwargs(
    *,
    num_cpus: int | None,
    dashboard: bool,
    dashboard_port: int | None = None,
    temp_dir: str | None = None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        # a new local cluster even when a `ray start` cluster's address file is on the machine
        # (`ray.init()` without an address would join that one; RAY_ADDRESS still wins)
        "address": "local",
        "namespace": APP_NAME,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "include_dashboard": dashboard,
    }
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    if dashboard:
        kwargs.update(dashboard_host="127.0.0.1", dashboard_port=dashboard_port or free_port())
    if temp_dir is not None:
        kwargs["_temp_dir"] = temp_dir
    return kwargs


@contextlib.contextmanager
def _dashboard_agent_port(port: int) -> Iterator[None]:
    """``ray.init`` cannot pick the dashboard agent's port (always 52365): with a second Ray
    cluster on the machine the agent cannot bind and the Jobs API has no agent to submit to."""
    import functools

    import ray

    params = ray._private.parameter
    with mock.patch.object(
        params,
        "RayParams",
        functools.partial(params.RayParams, dashboard_agent_listen_port=port),
    ):
        yield


# Ray's switch for "no multi-node cluster here" (its default on macOS and Windows): the node's
# address is 127.0.0.1, so the GCS, the raylet, the metrics agent (whose series name tenants)
# and every other port of a local cluster listen on loopback only, not on every interface.
LOOPBACK_NODE = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@contextlib.contextmanager
def _loopback_node() -> Iterator[None]:
    """A fresh local cluster on 127.0.0.1: the variable for the processes ``ray.init`` spawns
    (they pass it on to every worker and job), Ray's constant for this process, which read it
    when it imported Ray."""
    from ray._private import ray_constants

    saved = {key: os.environ.get(key) for key in LOOPBACK_NODE}
    os.environ.update(LOOPBACK_NODE)
    try:
        with mock.patch.object(ray_constants, "ENABLE_RAY_CLUSTER", False):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def own_interpreter_first_on_path() -> None:
    """Put this interpreter's directory first on ``PATH`` before Ray starts.

    A Ray Job's entrypoint (``python -m scripts.reenhance``) runs in a shell on the head with
    the ``PATH`` Ray's processes inherit from the process that started Ray. Started as a
    systemd unit starts it (``/opt/venv/bin/ai-agents serve``, the venv not activated), that
    ``PATH`` finds the system's ``python``, which lacks this project's packages; with the
    service's own interpreter first, jobs run where the service runs."""
    bin_dir = os.path.dirname(sys.executable)
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
    os.environ["PATH"] = os.pathsep.join([bin_dir, *parts])


def start_ray(**init_kwargs: Any) -> Any:
    """``ray.init(**init_kwargs)`` (see ``ray_init_kwargs``); its context.

    A fresh local cluster (``address="local"``, what ``ray_init_kwargs`` asks for) listens on
    loopback only (``LOOPBACK_NODE``). A cluster this starts gives its dashboard agent a free
    port instead of Ray's fixed 52365,
    so it starts and its Jobs API works while another Ray cluster runs on the machine (a second
    `ai-agents serve`, a benchmark, the test suite's Ray lanes). A cluster this starts is named
    in its temp dir (``_temp_dir``, else Ray's default), as ``ray start`` names its own: that is
    where a Ray Job's driver looks for the cluster to join, and without it the driver joins
    any Ray cluster whose raylet runs on the machine. Joining an existing
    cluster (``RAY_ADDRESS``) starts no agent, and the port is then unused. Every log file of
    the cluster rotates (``core.ingress_mode.LOG_ROTATION``)."""
    import ray
    from ray._private.worker import RayContext

    local = init_kwargs.get("address") == "local"
    own_interpreter_first_on_path()
    apply_log_rotation()  # Ray's processes, replicas included, inherit it from here
    with (
        _dashboard_agent_port(free_port()),
        _loopback_node() if local else contextlib.nullcontext(),
    ):
        context = ray.init(**init_kwargs)
    temp_dir = init_kwargs.get("_temp_dir")
    if local or temp_dir is not None:
        # a driver's context (no ray:// client here), which knows its cluster's GCS address
        assert isinstance(context, RayContext)
        gcs_address = context.address_info["gcs_address"]
        assert gcs_address is not None
        ray._private.utils.write_ray_address(gcs_address, temp_dir)
        _named.append((gcs_address, temp_dir))
    return context


# The clusters ``start_ray`` named in a temp dir (GCS address, temp dir), for ``stop_ray`` to
# take the name back.
_named: list[tuple[str, str | None]] = []


def _unname_stopped_clusters() -> None:
    """Remove the address file of each cluster this process named and stopped, unless a newer
    cluster has named itself there since: left behind, it sends the next ``ray.init()`` or
    ``serve run`` without an address to a cluster that no longer exists (``ray stop`` removes
    its own the same way)."""
    from ray._private import utils

    while _named:
        gcs_address, temp_dir = _named.pop()
        if utils.read_ray_address(temp_dir) == gcs_address:
            with contextlib.suppress(FileNotFoundError):
                os.remove(utils.get_ray_address_file(temp_dir))


def start_serve(http_port: int) -> None:
    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": http_port})


def deploy_app(app: Any = None) -> None:
    """Run ``app`` (default: the product's application graph, its pools sized to the cluster's
    logical CPUs, ``cluster_cpus``) as the one Serve application."""
    from ray import serve

    from actors.app import build_app

    app = app if app is not None else build_app(node_cpus=cluster_cpus())
    serve.run(app, name=APP_NAME, route_prefix="/")


def cluster_cpus() -> float | None:
    """The logical CPUs of the Ray cluster this process is connected to (None: unknown)."""
    import ray

    cpus = ray.cluster_resources().get("CPU") if ray.is_initialized() else None
    return float(cpus) if cpus else None


def machine_cpus(override: int = 0) -> int:
    """The CPUs an embedded Ray gets: ``override`` (``AI_AGENTS_RAY_NUM_CPUS``) when set, else
    the CPUs this process may run on (what ``nproc`` prints: the affinity mask)."""
    if override > 0:
        return override
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def stop_ray(*, shutdown_serve: bool = False) -> None:
    """Stop the local cluster; ``shutdown_serve`` first lets Serve stop its replicas and
    proxies cleanly (slower, but nothing is left for the next run to find)."""
    import ray
    from ray import serve

    if ray.is_initialized():
        if shutdown_serve:
            serve.shutdown()
        ray.shutdown()
    _unname_stopped_clusters()


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

    client = _get_global_client()
    assert client is not None  # it raises instead when no Serve controller is running
    return ray.get(client._controller.get_serve_instance_details.remote())


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


class RayServe:
    """Ray (a fresh local cluster) + Serve in this process, with ``env`` as the service's
    whole ``AI_AGENTS_*`` environment."""

    def __init__(
        self, env: dict[str, str], *, num_cpus: int | None = None, dashboard: bool = False
    ) -> None:
        self.env = env
        self.num_cpus = num_cpus
        self.dashboard = dashboard
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self) -> float:
        started = time.monotonic()
        apply_environment(self.env, replace=True)
        if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1":
            os.environ.update(isolated_serve_env())
        start_ray(**ray_init_kwargs(num_cpus=self.num_cpus, dashboard=self.dashboard))
        start_serve(self.http_port)
        return time.monotonic() - started

    def deploy(self, app: Any = None) -> float:
        started = time.monotonic()
        deploy_app(app)
        return time.monotonic() - started

    def stop(self) -> None:
        stop_ray()

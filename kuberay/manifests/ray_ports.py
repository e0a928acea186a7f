"""Every port a Ray node of the rendered cluster listens on, pinned, and the ``rayStartParams``
that pin them.

Ray picks most of its ports at random unless told otherwise (the raylet's node and object
managers, the dashboard agent's gRPC port, the runtime-env agent, Prometheus' export port), so
a NetworkPolicy could only allow "any port" between the pods. Pinned here, the rendered policy
(``kuberay.manifests.network_policy``) lists exactly these, ``kuberay validate`` checks that
every pinned port is allowed, and the multi-host harness (``local_stack.hosts``) starts each
node with the same parameters and enforces the same policy as packet filter rules.

Port names are those of the container ports (``cluster.py``), shared with the operator docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from kuberay.manifests.serve_config import SERVE_PORT

GCS_PORT = 6379
DASHBOARD_PORT = 8265
CLIENT_PORT = 10001
METRICS_PORT = 8080  # metrics-export-port: the node's Prometheus endpoint
NODE_MANAGER_PORT = 8077
OBJECT_MANAGER_PORT = 8076
DASHBOARD_AGENT_GRPC_PORT = 8078
RUNTIME_ENV_AGENT_PORT = 8079
DASHBOARD_AGENT_PORT = 52365  # dashboard-agent-listen-port (HTTP; KubeRay's probes use it)
AUTOSCALER_METRICS_PORT = 44217  # fixed by Ray: the autoscaler's Prometheus endpoint (head)
DASHBOARD_METRICS_PORT = 44227  # fixed by Ray: the dashboard's Prometheus endpoint (head)
# Every worker process (task/actor worker, a job's driver) listens on one port of this range:
# calls between actors on different nodes arrive there. Ray's defaults, written out.
MIN_WORKER_PORT = 10002
MAX_WORKER_PORT = 19999
# Serve's direct ingress (ingressMode haproxy): each Ingress replica's own HTTP port, which
# HAProxy on every node forwards to (Ray's defaults, RAY_SERVE_DIRECT_INGRESS_*_HTTP_PORT).
DIRECT_INGRESS_MIN_PORT = 30000
DIRECT_INGRESS_MAX_PORT = 31000


@dataclass(frozen=True)
class RayPort:
    """One port (or range) a Ray node opens: its name, the ``rayStartParams`` key that pins it
    (None: fixed by Ray or by the Serve config), which nodes open it, and what uses it."""

    name: str
    port: int
    end_port: int | None
    param: str | None
    head_only: bool
    purpose: str


RAY_PORTS: tuple[RayPort, ...] = (
    RayPort("gcs-server", GCS_PORT, None, None, True, "GCS: every node and driver"),
    RayPort("dashboard", DASHBOARD_PORT, None, "dashboard-port", True, "Jobs API, Serve REST"),
    RayPort("client", CLIENT_PORT, None, "ray-client-server-port", True, "Ray client (ray://)"),
    RayPort("serve", SERVE_PORT, None, None, False, "Serve's HTTP proxy or HAProxy"),
    RayPort("metrics", METRICS_PORT, None, "metrics-export-port", False, "node metrics"),
    RayPort("node-manager", NODE_MANAGER_PORT, None, "node-manager-port", False, "raylet"),
    RayPort("object-manager", OBJECT_MANAGER_PORT, None, "object-manager-port", False, "objects"),
    RayPort(
        "agent-grpc",
        DASHBOARD_AGENT_GRPC_PORT,
        None,
        "dashboard-agent-grpc-port",
        False,
        "dashboard agent gRPC (metrics from workers, dashboard to agent)",
    ),
    RayPort(
        "dashboard-agent",
        DASHBOARD_AGENT_PORT,
        None,
        "dashboard-agent-listen-port",
        False,
        "dashboard agent HTTP (job submission, health)",
    ),
    RayPort(
        "runtime-env",
        RUNTIME_ENV_AGENT_PORT,
        None,
        "runtime-env-agent-port",
        False,
        "runtime-env agent",
    ),
    RayPort(
        "workers",
        MIN_WORKER_PORT,
        MAX_WORKER_PORT,
        "min-worker-port",
        False,
        "worker processes: actor calls between nodes",
    ),
    RayPort(
        "direct-ingress",
        DIRECT_INGRESS_MIN_PORT,
        DIRECT_INGRESS_MAX_PORT,
        None,
        False,
        "Ingress replicas' own HTTP ports (HAProxy mode)",
    ),
    RayPort("as-metrics", AUTOSCALER_METRICS_PORT, None, None, True, "autoscaler metrics"),
    RayPort("dash-metrics", DASHBOARD_METRICS_PORT, None, None, True, "dashboard metrics"),
)

# Reached only by Prometheus (the monitoring namespace), never between the cluster's pods.
MONITORING_ONLY = frozenset({"metrics", "as-metrics", "dash-metrics"})


def start_params(*, head: bool) -> dict[str, str]:
    """The ``rayStartParams`` that pin every port a node of this kind opens."""
    params = {
        "node-manager-port": str(NODE_MANAGER_PORT),
        "object-manager-port": str(OBJECT_MANAGER_PORT),
        "min-worker-port": str(MIN_WORKER_PORT),
        "max-worker-port": str(MAX_WORKER_PORT),
        "dashboard-agent-listen-port": str(DASHBOARD_AGENT_PORT),
        "dashboard-agent-grpc-port": str(DASHBOARD_AGENT_GRPC_PORT),
        "metrics-export-port": str(METRICS_PORT),
        "runtime-env-agent-port": str(RUNTIME_ENV_AGENT_PORT),
    }
    if head:
        # KubeRay adds --port (the GCS) from the head service's gcs-server port itself
        params |= {
            "dashboard-port": str(DASHBOARD_PORT),
            "ray-client-server-port": str(CLIENT_PORT),
        }
    return params


def pinned_port_params(*, head: bool) -> tuple[str, ...]:
    """The ``rayStartParams`` keys a node of this kind must set (validation checks them)."""
    return tuple(start_params(head=head))


def cluster_ports(*, haproxy: bool) -> list[RayPort]:
    """The ports the cluster's pods reach each other on (the Ray-internal policy)."""
    return [
        p
        for p in RAY_PORTS
        if p.name not in MONITORING_ONLY and (haproxy or p.name != "direct-ingress")
    ]

"""The configurations the intake benchmark compares: how Ray Serve carries the webhook (proxy,
HAProxy, direct ingress, throughput-optimised, replicas) against bare uvicorn and the floor."""

from __future__ import annotations

from dataclasses import dataclass, field

TPUT = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
HA = {"RAY_SERVE_ENABLE_HA_PROXY": "1"}


@dataclass
class Config:
    name: str
    label: str
    kind: str = "serve"  # "bare" | "serve"
    env: dict[str, str] = field(default_factory=dict)
    target: str = "http"  # "http": the Serve HTTP port; "direct": the replica ports
    graph: str = "ingress"
    replicas: int = 0
    auth: str = "hmac"  # "token": X-Webhook-Token tenants (what SDP sends out of the box)
    backlog: bool = False  # enqueue --backlog real tickets before measuring (busy pipeline)


CONFIGS = {
    c.name: c
    for c in [
        Config("bare", "bare uvicorn, same create_api app", kind="bare"),
        Config("proxy", "Serve default proxy (product options)"),
        Config(
            "proxy-sameloop",
            "Serve proxy, user code + router on main loop, log buffer",
            env={
                "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
                "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
                "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
            },
        ),
        Config(
            "direct",
            "Serve direct ingress (client -> replica)",
            env={"RAY_SERVE_ENABLE_DIRECT_INGRESS": "1"},
            target="direct",
        ),
        Config("direct-tput", "direct ingress + THROUGHPUT_OPTIMIZED", env=TPUT, target="direct"),
        Config("haproxy", "Serve HAProxy ingress", env=HA),
        Config("haproxy-tput", "HAProxy + THROUGHPUT_OPTIMIZED", env={**HA, **TPUT}),
        Config(
            "haproxy-tput-nometrics",
            "HAProxy + THROUGHPUT_OPTIMIZED, HAProxy metrics off",
            env={**HA, **TPUT, "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0"},
        ),
        Config(
            "direct-tput-2r",
            "direct ingress + THROUGHPUT_OPTIMIZED, 2 replicas",
            env=TPUT,
            target="direct",
            replicas=2,
        ),
        Config(
            "haproxy-tput-2r",
            "HAProxy + THROUGHPUT_OPTIMIZED, 2 Ingress replicas",
            env={**HA, **TPUT},
            replicas=2,
        ),
        Config(
            "haproxy-tput-stderr",
            "HAProxy + THROUGHPUT_OPTIMIZED + RAY_SERVE_LOG_TO_STDERR=1",
            env={**HA, **TPUT, "RAY_SERVE_LOG_TO_STDERR": "1"},
        ),
        Config(
            "haproxy-tput-stderr-2r",
            "the same with 2 Ingress replicas",
            env={**HA, **TPUT, "RAY_SERVE_LOG_TO_STDERR": "1"},
            replicas=2,
        ),
        Config(
            "haproxy-tput-full",
            "HAProxy + THROUGHPUT_OPTIMIZED, pipeline running",
            env={**HA, **TPUT},
            graph="full",
        ),
        Config("bare-end", "bare uvicorn again (drift check)", kind="bare"),
        Config(
            "floor", "floor: uvicorn + asyncpg, token check, one INSERT", kind="floor", auth="token"
        ),
        Config(
            "bare-token",
            "the product app under bare uvicorn, token webhooks (no Serve)",
            kind="bare",
            auth="token",
        ),
        Config(
            "serve-floor",
            "the floor's ASGI app as the Serve ingress (HAProxy + THROUGHPUT_OPTIMIZED)",
            env={**HA, **TPUT, "RAY_SERVE_LOG_TO_STDERR": "1"},
            auth="token",
            graph="floor",
        ),
        Config(
            "serve-token",
            "ai-agents serve's ingress mode, token webhooks, pipeline idle",
            env={**HA, **TPUT, "RAY_SERVE_LOG_TO_STDERR": "1"},
            auth="token",
        ),
        Config(
            "busy-pipeline",
            "the same, whole pipeline deployed and busy with a backlog",
            env={**HA, **TPUT, "RAY_SERVE_LOG_TO_STDERR": "1"},
            auth="token",
            graph="full",
            backlog=True,
        ),
        Config(
            "busy-pipeline-2r",
            "busy-pipeline with 2 Ingress replicas",
            env={**HA, **TPUT, "RAY_SERVE_LOG_TO_STDERR": "1"},
            auth="token",
            graph="full",
            backlog=True,
            replicas=2,
        ),
        Config(
            "busy-pipeline-nice0",
            "busy-pipeline, AI_AGENTS_PIPELINE_NICE=0: all at Ray's 15",
            env={**HA, **TPUT, "RAY_SERVE_LOG_TO_STDERR": "1", "AI_AGENTS_PIPELINE_NICE": "0"},
            auth="token",
            graph="full",
            backlog=True,
        ),
        Config(
            "busy-pipeline-ingress-nice0",
            "busy-pipeline, RAY_worker_niceness=0: the Ingress at the default priority",
            env={**HA, **TPUT, "RAY_SERVE_LOG_TO_STDERR": "1", "RAY_worker_niceness": "0"},
            auth="token",
            graph="full",
            backlog=True,
        ),
        Config(
            "busy-pipeline-nopriority",
            "busy-pipeline, AI_AGENTS_INTAKE_PRIORITY_RATE=0: the Dispatcher never paces",
            env={
                **HA,
                **TPUT,
                "RAY_SERVE_LOG_TO_STDERR": "1",
                "AI_AGENTS_INTAKE_PRIORITY_RATE": "0",
            },
            auth="token",
            graph="full",
            backlog=True,
        ),
    ]
}


DEFAULT_CONFIGS = "bare,proxy,haproxy,haproxy-tput-stderr,haproxy-tput-stderr-2r,direct-tput"

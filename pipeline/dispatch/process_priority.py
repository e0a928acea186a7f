"""Intake keeps the CPU when the pipeline is busy: pipeline processes run at a lower OS priority.

Acknowledging ServiceDesk Plus quickly matters more than processing at once, because the work
is durable: a job that waits a second longer in PostgreSQL costs nothing, while a webhook that
waits for a CPU behind hundreds of enhancements in flight is late for SDP. So every process
that only does pipeline work (Enhancer, ContextGatherer, Synthesizer replicas and the
per-tenant rate-limiter actors) raises its own niceness once, when it starts; the Ingress, the
Dispatcher and PostgreSQL keep the default priority. When the CPU is idle, nice costs nothing:
the kernel only prefers the Ingress when both want the same core.

Ray starts every worker process, the Ingress replicas included, at niceness 15
(``RAY_worker_niceness``); ``AI_AGENTS_PIPELINE_NICE`` (0-19, default 19; anything at or below
15 changes nothing under Ray) puts the pipeline below that, so when both want a core the kernel
gives the Ingress 36/15 = 2.4 times the share of each pipeline process (CFS weights). Niceness
can only be raised without privileges, never lowered back, and applies to the whole process —
this is why it is called from the constructors of pipeline-only deployments and actors and
nowhere else.
"""

from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger(__name__)


def lower_pipeline_priority(target_nice: int) -> int:
    """Raise the niceness of every thread of this process to ``target_nice`` (never lower it);
    returns the main thread's niceness now.

    Linux keeps niceness per thread, and a Ray worker runs our constructor on one thread while
    its core-worker, gRPC and event-loop threads already exist: ``os.nice`` alone would leave
    those at Ray's worker niceness (15). Threads started later inherit from their creator."""
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the process-wide call is the best there is
        threads = []
    try:
        if not threads:
            current = os.getpriority(os.PRIO_PROCESS, 0)
            return os.nice(target_nice - current) if target_nice > current else current
        for tid in threads:
            with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                if os.getpriority(os.PRIO_PROCESS, tid) < target_nice:
                    os.setpriority(os.PRIO_PROCESS, tid, target_nice)
    except OSError as exc:  # e.g. a seccomp profile forbidding it: run at normal priority
        log.warning("could not lower the pipeline's CPU priority: %s", exc)
    return os.getpriority(os.PRIO_PROCESS, os.getpid())

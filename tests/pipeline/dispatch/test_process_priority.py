"""Pipeline processes give way to the Ingress: every thread's niceness is raised, never lowered.

Run in a child interpreter: niceness cannot be lowered again without privileges, so the test
must not change the pytest process itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent("""
    import json, os, threading
    from pipeline.dispatch.process_priority import lower_pipeline_priority

    started = threading.Event()
    stop = threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), stop.wait()))
    worker.start()
    started.wait()
    os.setpriority(os.PRIO_PROCESS, worker.native_id, 3)  # a thread already niced by someone
    before = os.getpriority(os.PRIO_PROCESS, os.getpid())
    now = lower_pipeline_priority(int(os.environ["TARGET"]))
    again = lower_pipeline_priority(1)  # a lower target must not raise the priority back
    threads = {int(t): os.getpriority(os.PRIO_PROCESS, int(t))
               for t in os.listdir("/proc/self/task")}
    stop.set()
    print(json.dumps({"before": before, "now": now, "again": again,
                      "threads": sorted(threads.values())}))
""")


def run_child(target: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        check=True,
        env={"TARGET": str(target), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(out.stdout)


def test_every_existing_thread_is_lowered_to_the_target() -> None:
    result = run_child(17)
    assert result["before"] == 0
    assert result["now"] == 17 and result["again"] == 17
    assert result["threads"] == [17, 17]  # the main thread and the one started before


def test_a_thread_already_nicer_than_the_target_keeps_its_niceness() -> None:
    result = run_child(0)
    assert result["now"] == 0  # target 0: nothing to do
    # then target 1: the main thread goes 0 -> 1, the thread at 3 is not raised to 1
    assert result["again"] == 1
    assert result["threads"] == [1, 3]

"""The suite's lanes: pytest-xdist groups that `python -m pytest` (`-n 3 --dist loadgroup`)
runs side by side, one worker each at a time. `tests/conftest.py` puts every test in one.

- `ray-free`: everything not marked `ray` (the fast lane, `-m "not ray"`).
- `ray`: the Ray tests, in collection order, the integration session last.
- `ray-side`: Ray tests that start their own Ray (a subprocess with its own database and
  ports) and need nothing from the others.
- `hosts`: the cluster of real hosts (network namespaces, `tests/local_stack/hosts`), minutes of
  cluster start-ups and fault waits.

Three workers on two cores: most of the suite waits (autoscaling delays, node and
`ai-agents serve` start-ups, fault windows), so three lanes at once cost little CPU. The first
three lanes start at once; `hosts` goes, as the lanes collected last do, to the first worker
that is almost done (the Ray-free one). Several Ray clusters then share the machine, which
every Ray start here allows: free ports for the dashboard agent, HAProxy and the fallback
proxy, its own temp dir where a Ray Job looks for its cluster; the hosts' clusters live in
their own network and PID namespaces.
"""

from __future__ import annotations

import pytest

RAY_FREE = "ray-free"
RAY = "ray"
RAY_SIDE = "ray-side"
HOSTS = "hosts"

# `pytestmark = ray_side` for a module whose Ray tests run in the side lane
ray_side = [pytest.mark.ray, pytest.mark.xdist_group(RAY_SIDE)]
# `pytestmark = hosts` for the cluster of real hosts (network namespaces): its own lane
hosts = [pytest.mark.ray, pytest.mark.xdist_group(HOSTS)]
# the lanes that go last, each to the first worker that is almost done with its own
LATE = (RAY_SIDE, HOSTS)

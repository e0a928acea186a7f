"""The suite's lanes: pytest-xdist groups that `python -m pytest` (`-n 2 --dist loadgroup`)
runs side by side, one worker each at a time. `tests/conftest.py` puts every test in one.

- `ray-free`: everything not marked `ray` (the fast lane, `-m "not ray"`).
- `ray`: the Ray tests, in collection order, the integration session last.
- `ray-side`: Ray tests that start their own Ray (a subprocess with its own database and
  ports) and need nothing from the others. The Ray lane alone took ~17 min; these ~5 min of
  it run on the worker the Ray-free lane has freed (they are collected last, so that worker
  takes them once its own lane is almost done). Two Ray clusters then share the machine for
  a while, which every Ray start here allows: free ports for the dashboard agent, HAProxy and
  the fallback proxy, its own temp dir where a Ray Job looks for its cluster.
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

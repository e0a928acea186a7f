"""A cluster ``start_ray`` starts is named in its temp dir, where a Ray Job's driver,
``ray.init()`` and ``serve run`` without an address look for it; ``stop_ray`` takes the name
back, so none of them is sent to a cluster that no longer exists."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray._private.utils import read_ray_address, write_ray_address

from local_stack import ray_serve
from tests import lanes


@pytest.fixture
def temp_dir() -> Iterator[str]:
    # short: Ray's socket paths under it must stay within the 107-byte limit
    path = tempfile.mkdtemp(prefix="aa-ray-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_only_the_stopped_clusters_own_name_is_taken_back(
    temp_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    named: list[tuple[str, str | None]] = []
    monkeypatch.setattr(ray_serve, "_named", named)
    write_ray_address("10.0.0.1:6379", temp_dir)
    named.append(("10.0.0.1:6379", temp_dir))
    ray_serve._unname_stopped_clusters()
    assert read_ray_address(temp_dir) is None and not named

    write_ray_address("10.0.0.2:6379", temp_dir)  # a newer cluster named itself since
    named.append(("10.0.0.1:6379", temp_dir))
    ray_serve._unname_stopped_clusters()
    assert read_ray_address(temp_dir) == "10.0.0.2:6379"
    ray_serve._unname_stopped_clusters()  # nothing left to take back: no error
    assert Path(temp_dir, "ray_current_cluster").exists()


@pytest.mark.ray
@pytest.mark.xdist_group(lanes.RAY_SIDE)
def test_a_stopped_cluster_leaves_no_address_behind(temp_dir: str) -> None:
    context = ray_serve.start_ray(
        **ray_serve.ray_init_kwargs(num_cpus=1, dashboard=False, temp_dir=temp_dir)
    )
    try:
        assert read_ray_address(temp_dir) == context.address_info["gcs_address"]
    finally:
        ray_serve.stop_ray()
    assert read_ray_address(temp_dir) is None

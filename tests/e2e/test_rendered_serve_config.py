"""The Serve config rendered into the RayService drives a local deployment unchanged
(`serve run` with the same applications section), so local and cluster share one source.

It runs from what the container image holds, not from this source tree: the project's wheel
installed with the lock (`constraints.txt`) into a fresh virtualenv without system packages,
as the Dockerfile does, so a module missing from the wheel or a dependency missing from the
lock fails here. (No container engine here: the image build itself is not run.)"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from actors.deployment_options import pool_options
from core.ports import free_port
from core.version import package_version
from kuberay.manifests.serve_config import serve_config_for_local
from kuberay.render import render
from pipeline.tenancy.credential_cipher import new_secret
from tests import lanes
from tests.e2e.serve_process import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
# The wheel's environment only: a PYTHONPATH pointing at a source tree would shadow the wheel.
WHEEL_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A fresh virtualenv holding the built wheel, on top of this environment's packages (the
    locked dependencies: tests/packaging checks the lock against pyproject.toml), so what is
    tested is the wheel itself: every module and data file comes from it, not from the source
    tree. A few seconds; installing Ray and the rest again would take a minute or more.

    Built once per run: the two lanes (pytest-xdist workers) both use it -- the wheel test in
    the Ray-free lane, `serve run` in the Ray lane -- so whichever asks first builds it in the
    run's shared temporary directory while the other waits on a lock."""
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    work = shared / "wheel-install"
    with (shared / "wheel-install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (work / "ready").exists():
            shutil.rmtree(work, ignore_errors=True)  # (a build that failed half-way)
            work.mkdir()
            _build_wheel_install(work)
            (work / "ready").touch()
    return work / "venv"


def _build_wheel_install(work: Path) -> None:
    # Built from a copy: setuptools leaves build/ and *.egg-info in the tree it builds from.
    source = work / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "build", "*.egg-info", "__pycache__", ".data", "rendered", ".*_cache"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--wheel-dir",
            str(work / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (work / "dist").glob("ai_agents-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            # into the venv even when the environment under it already has this version (an
            # editable install of a checkout): pip would call it satisfied and install nothing
            "--ignore-installed",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]


def test_wheel_install_is_self_contained(wheel_install: Path, tmp_path: Path) -> None:
    """Every package and data file comes from the installed wheel, every locked pin holds, no
    conflicts."""
    python = str(wheel_install / "bin" / "python")
    packages = sorted(
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and p.name not in ("tests", "benchmarks")
    )
    probe = subprocess.run(
        [
            python,
            "-c",
            "import importlib, sys\n"
            "for name in sys.argv[1:]: print(importlib.import_module(name).__file__)\n"
            "from importlib import resources\n"
            "import kuberay.values, simulators.demo_data as d\n"
            "print(resources.files('db.migrations') / '0001_schema.sql')\n"
            "print(kuberay.values.DEFAULT_VALUES_FILE); print(d.DATA_DIR / 'retrieval_eval.jsonl')",
            *packages,
        ],
        cwd=tmp_path,
        capture_output=True,
        env=WHEEL_ENV,
        text=True,
        check=True,
    )
    paths = probe.stdout.splitlines()
    assert len(paths) == len(packages) + 3, probe.stdout
    for path in paths:
        assert path.startswith(str(wheel_install)), f"{path} is not from the installed wheel"
    # every requirement the wheel declares is met by what is installed (pip check would also
    # judge the machine's own unrelated packages, which the system site packages bring in)
    unmet = subprocess.run(
        [
            python,
            "-c",
            "from importlib import metadata\n"
            "from packaging.requirements import Requirement\n"
            "for text in metadata.requires('ai-agents') or []:\n"
            "    req = Requirement(text)\n"
            "    if req.marker and not req.marker.evaluate({'extra': ''}): continue\n"
            "    have = metadata.version(req.name)\n"
            "    if not req.specifier.contains(have, prereleases=True): print(req, have)",
        ],
        capture_output=True,
        env=WHEEL_ENV,
        text=True,
        check=True,
    )
    assert unmet.stdout == "", unmet.stdout
    version = subprocess.run(
        [str(wheel_install / "bin" / "ai-agents"), "--version"],
        capture_output=True,
        env=WHEEL_ENV,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert version.stdout.strip() == f"ai-agents {package_version()}"
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze"], capture_output=True, env=WHEEL_ENV, text=True, check=True
    ).stdout
    locked = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for line in frozen.splitlines():
        name, _, installed = line.partition("==")
        key = name.lower().replace("_", "-")
        if key in locked:
            assert installed == locked[key], f"{name}: {installed} installed, lock {locked[key]}"
    assert "ray==2.60.0" in frozen


def _unsized(apps: list[dict]) -> list[dict]:
    """The applications without what follows the cluster's size."""
    out = json.loads(json.dumps(apps))
    for app in out:
        for dep in app["deployments"]:
            scaling = dep.get("autoscaling_config") or {}
            scaling.pop("max_replicas", None)
            ((scaling.get("policy") or {}).get("policy_kwargs") or {}).pop("max_cluster_cpus", None)
    return out


@pytest.mark.ray  # `serve run` starts Ray; the wheel test above does not
@pytest.mark.xdist_group(lanes.RAY_SIDE)
def test_rendered_serve_config_runs_with_serve_run(
    wheel_install: Path, database, encryption_keys, tmp_path
) -> None:
    rendered = yaml.safe_load(render()["rayservice.yaml"])
    cluster_apps = yaml.safe_load(rendered["spec"]["serveConfigV2"])["applications"]
    port = free_port()
    local = serve_config_for_local(port=port)
    # one source of truth, but for what follows the cluster's size: on KubeRay the pools'
    # max_replicas and the policy's max_cluster_cpus come from the worker groups
    assert _unsized(local["applications"]) == _unsized(cluster_apps)
    for dep in local["applications"][0]["deployments"]:
        if "autoscaling_config" in dep:  # one machine, no worker groups: the declared sizing
            declared = pool_options(dep["name"])["autoscaling_config"]["max_replicas"]
            assert dep["autoscaling_config"]["max_replicas"] == declared
    config_file = tmp_path / "serve_config.yaml"
    config_file.write_text(yaml.safe_dump(local))

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AI_AGENTS_", "RAY_", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    admin_token = new_secret("adm_")
    env.update(
        {
            "AI_AGENTS_DATABASE_URL": database.service_url,
            "AI_AGENTS_ENCRYPTION_KEYS": encryption_keys,
            "AI_AGENTS_ADMIN_TOKEN": admin_token,
            # a cluster of its own: without an address `serve run` joins the cluster last
            # named in Ray's temp dir, which the suite's other lanes may have started
            "RAY_ADDRESS": "local",
        }
    )
    # cwd outside the source tree: `serve run` puts its app dir (".") on sys.path.
    process = subprocess.Popen(
        # Ray's `serve` CLI under the wheel's interpreter (the script itself is Ray's, outside
        # the wheel's venv), so the app is imported from the wheel
        [str(wheel_install / "bin" / "python"), "-m", "ray.serve.scripts", "run", str(config_file)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = wait_until_ready(
            process, f"http://127.0.0.1:{port}", timeout_s=150, token=admin_token
        )
        components = ready.json()["components"]
        for pool in ("Ingress", "Dispatcher", "Enhancer", "ContextGatherer", "Synthesizer"):
            assert components[f"pool:{pool}"]["ok"], json.dumps(components)
    finally:
        process.send_signal(signal.SIGINT)  # `serve run` shuts down the Ray it started
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()

"""The Serve config rendered into the RayService drives a local deployment unchanged
(`serve run` with the same applications section), so local and cluster share one source."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import yaml

from kuberay.render import render
from kuberay.serve_config import serve_config_for_local
from pipeline.credential_cipher import new_secret
from simulators.serving import free_port
from tests.e2e.serve_process import wait_until_ready


def test_rendered_serve_config_runs_with_serve_run(database, encryption_keys, tmp_path) -> None:
    rendered = yaml.safe_load(render()["rayservice.yaml"])
    cluster_apps = yaml.safe_load(rendered["spec"]["serveConfigV2"])["applications"]
    port = free_port()
    local = serve_config_for_local(port=port)
    assert local["applications"] == cluster_apps  # one source of truth
    config_file = tmp_path / "serve_config.yaml"
    config_file.write_text(yaml.safe_dump(local))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AI_AGENTS_", "RAY_"))}
    env.update({"AI_AGENTS_DATABASE_URL": database.service_url,
                "AI_AGENTS_ENCRYPTION_KEYS": encryption_keys,
                "AI_AGENTS_ADMIN_TOKEN": new_secret("adm_")})
    process = subprocess.Popen(["serve", "run", str(config_file)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ready = wait_until_ready(process, f"http://127.0.0.1:{port}", timeout_s=150)
        components = ready.json()["components"]
        for pool in ("Ingress", "Dispatcher", "Enhancer", "ContextGatherer", "Synthesizer"):
            assert components[f"pool:{pool}"]["ok"], json.dumps(components)
    finally:
        process.send_signal(signal.SIGINT)  # `serve run` shuts down the Ray it started
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()

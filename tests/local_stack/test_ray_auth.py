"""A fresh process (a second terminal: only PATH and HOME) sends the local Ray cluster's token
exactly when Ray would need it, decided by Ray's own client code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, os
from local_stack.ray_auth import use_ray_token_if_available
import ray  # already imported before the switch in the real CLI (kuberay imports Ray's schema)
on = use_ray_token_if_available()
from ray._private.authentication.http_token_authentication import get_auth_headers_if_auth_enabled
print(json.dumps({"on": on, "mode": os.environ.get("RAY_AUTH_MODE"),
                  "headers": get_auth_headers_if_auth_enabled({})}))
"""


def _probe(home: Path, **extra: str) -> dict:
    env = {"PATH": os.environ["PATH"], "HOME": str(home), **extra}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_token_file_present_turns_token_mode_on_and_ray_sends_it(tmp_path: Path) -> None:
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("tok-123\n")
    seen = _probe(tmp_path)
    assert seen["on"] is True and seen["mode"] == "token"
    assert seen["headers"] == {"authorization": "Bearer tok-123"}


def test_no_token_leaves_ray_alone(tmp_path: Path) -> None:
    seen = _probe(tmp_path)
    assert seen == {"on": False, "mode": None, "headers": {}}


def test_an_explicit_mode_wins(tmp_path: Path) -> None:
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("tok-123\n")
    seen = _probe(tmp_path, RAY_AUTH_MODE="disabled")
    assert seen == {"on": False, "mode": "disabled", "headers": {}}

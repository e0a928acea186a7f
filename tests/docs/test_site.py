"""The documentation site builds with `mkdocs build --strict` (a broken link, a missing
#anchor, a page left out of the nav or a nav entry without its page fails it), and what the
pages name in the repository is there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# A path of this repository named in backticks in the docs, e.g. `pipeline/enhancer.py`.
TOPS = ("core", "db", "simulators", "pipeline", "serve_app", "actors", "kuberay", "local_stack",
        "cli", "scripts", "benchmarks", "tests", "docs")  # fmt: skip
REPO_PATH = re.compile(r"`((?:" + "|".join(TOPS) + r")/[\w./*-]*)")


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--quiet",
            "--site-dir",
            str(tmp_path),
        ],
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "runbooks" / "high-queue-depth" / "index.html").is_file()


def test_paths_the_docs_name_exist() -> None:
    missing = []
    for page in sorted(DOCS.rglob("*.md")):
        for match in REPO_PATH.finditer(page.read_text()):
            path = match.group(1).rstrip(".")
            if not any(ROOT.glob(path)) and not (ROOT / path).exists():
                missing.append(f"{page.relative_to(ROOT)}: {path}")
    assert missing == [], "paths named in the docs that do not exist:\n" + "\n".join(missing)

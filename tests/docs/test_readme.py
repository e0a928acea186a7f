"""README.md is the front door: at most 250 lines, the two set-up commands, the test command CI
runs, and links into the docs that resolve (the site build does not see the README)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_is_short() -> None:
    assert README.count("\n") <= 250


def test_readme_has_the_set_up_and_test_commands() -> None:
    for command in [
        'pip install -c constraints.txt -e ".[dev]"',
        "ai-agents demo",
        "python -m pytest",  # the full suite: .ci/run runs it
        'python -m pytest -m "not ray" --dist loadscope',  # the fast lane
        "mkdocs serve",
    ]:
        assert command in README, command


def test_readme_links_resolve() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert local, "the README links into docs/"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []

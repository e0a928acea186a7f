"""`ai-agents eval retrieval` as an operator runs it: a subprocess in a fresh environment, the
shipped labelled set, the real offline model and a scratch embedded PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import simulators.demo_data as demo_data

SET = Path(demo_data.__file__).parent / "retrieval_eval.jsonl"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_AGENTS_")}
    return subprocess.run(
        ["ai-agents", "eval", "retrieval", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_shipped_set_meets_the_retrieval_targets(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    assert len(lines) >= 60
    assert sum(c["wording"] == "end-user" for c in lines) * 2 >= len(lines)

    done = run("--set", str(SET), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    modes = {m["mode"]: m for m in json.loads(done.stdout)["modes"]}
    hybrid, fulltext = modes["hybrid"], modes["fulltext"]
    assert hybrid["cases"] == len(lines)
    assert hybrid["recall_at_1"] >= 0.90
    # Measured 65/66 = 0.9848 since near-duplicate precedents are spread out (README).
    assert hybrid["recall_at_5"] >= 0.97
    assert hybrid["recall_at_1"] >= fulltext["recall_at_1"] + 0.10
    assert hybrid["mrr"] > fulltext["mrr"] and hybrid["mrr"] > modes["vector"]["mrr"]


def test_bad_set_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tenant": "acme", "subject": "x", "scenario": "vpn_drops"}\nnot json\n')
    done = run("--set", str(bad), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: line 2: not JSON (Expecting value)"
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"tenant": "initech", "subject": "x", "scenario": "vpn_drops"}\n')
    done = run("--set", str(unknown), cwd=tmp_path)
    assert done.returncode == 1 and "not demo tenants" in done.stderr

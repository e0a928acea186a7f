"""A labelled evaluation set that is not JSON is refused with one line naming the line number,
also when the JSON parser fails with a plain ValueError (an integer past Python's digit limit)
rather than a JSONDecodeError — that case once raised AttributeError instead (found by mypy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.retrieval.evaluation import EvalSetError, load_eval_set


def test_undecodable_line_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\nnot json\n")
    with pytest.raises(EvalSetError, match=r"^line 2: not JSON \(Expecting value\)$"):
        load_eval_set(bad)


def test_integer_too_long_to_convert_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "huge.jsonl"
    bad.write_text('{"tenant": ' + "9" * 5000 + "}\n")
    with pytest.raises(EvalSetError, match=r"^line 1: not JSON \(Exceeds the limit"):
        load_eval_set(bad)

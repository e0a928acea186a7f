"""Ray rotates a worker's stdout/stderr (where a replica's JSON log lines go) only when
RAY_ROTATION_MAX_BYTES is in the environment of the process that starts Ray."""

from __future__ import annotations

import os

import pytest

from core.ingress_mode import LOG_ROTATION, apply_log_rotation


def test_rotation_is_exported_unless_the_operator_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ROTATION_MAX_BYTES", raising=False)
    monkeypatch.setenv("RAY_ROTATION_BACKUP_COUNT", "9")
    apply_log_rotation()
    assert os.environ["RAY_ROTATION_MAX_BYTES"] == LOG_ROTATION["RAY_ROTATION_MAX_BYTES"]
    assert os.environ["RAY_ROTATION_BACKUP_COUNT"] == "9"  # the operator's value wins
    assert (
        int(LOG_ROTATION["RAY_ROTATION_MAX_BYTES"])
        * (1 + int(LOG_ROTATION["RAY_ROTATION_BACKUP_COUNT"]))
        <= 512 * 2**20
    )  # a file and its backups stay within half a GiB

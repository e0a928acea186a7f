"""An embedded PostgreSQL (the ``pgserver`` wheel) in a throw-away data directory: migrated,
with the restricted service role, exactly as ``ai-agents serve`` resolves its runtime."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Database:
    data_dir: Path
    service_url: str
    owner_url: str
    encryption_keys: str
    admin_token: str

    @property
    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        return None


async def start_database(data_dir: Path) -> Database:
    from core.settings import Settings
    from local_stack.runtime import resolve_runtime

    settings = Settings(
        data_dir=data_dir,
        database_url=None,
        encryption_keys=None,
        admin_token=None,
        migration_database_url=None,
    )
    runtime = await resolve_runtime(settings)
    assert runtime.owner_url and runtime.admin_token
    return Database(
        data_dir,
        runtime.service_url,
        runtime.owner_url,
        runtime.encryption_keys,
        runtime.admin_token,
    )


def make_data_dir(label: str) -> Path:
    # Short path: the PostgreSQL Unix socket lives in it (socket paths are capped at 107 bytes).
    return Path(tempfile.mkdtemp(prefix=f"aab-{label}-", dir="/tmp"))


def remove_data_dir(path: Path) -> None:
    """Stop the embedded PostgreSQL living in ``path`` (if any), then delete ``path``.

    pgserver stops its server at interpreter exit with ``pg_ctl -D``; once the directory is
    gone that cannot work, so a server would be left running. Stop it first (SIGINT = fast
    shutdown)."""
    import psutil  # declared only in the dev extra; the benchmarks and tests call this

    pid_file = path / "postgres" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 15
        while psutil.pid_exists(pid) and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    break
            time.sleep(0.1)
    shutil.rmtree(path, ignore_errors=True)


async def owner_count(db: Database, sql: str, *args: Any) -> Any:
    """One value read as the owner role (row-level security does not apply to it)."""
    import asyncpg

    conn = await asyncpg.connect(db.owner_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()

"""Shared plumbing for the `ai-agents` commands: one-line errors, JSON output, DB access."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any, NoReturn, TypeVar, get_args

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from core.ingress_mode import IngressMode
from core.settings import Settings
from db.pool import create_pool
from local_stack.runtime import Runtime, resolve_runtime

T = TypeVar("T")

err = Console(stderr=True)

_INGRESS_MODES: dict[str, IngressMode] = {mode: mode for mode in get_args(IngressMode)}


class IngressChoice(StrEnum):
    """``--ingress``: Typer offers choices from an Enum, one member per ``IngressMode`` (a test
    holds the two lists equal)."""

    proxy = "proxy"
    haproxy = "haproxy"

    @property
    def mode(self) -> IngressMode:
        return _INGRESS_MODES[self.value]


IngressOption = typer.Option(
    None,
    "--ingress",
    case_sensitive=False,
    help="haproxy: Ray's HAProxy + direct ingress, ~3.5x the webhook throughput of proxy: "
    "Serve's proxy actor (default AI_AGENTS_SERVE_INGRESS, else haproxy)",
)


class CommandError(Exception):
    """An expected failure: printed as one line, exit code 1."""


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "input"
    return f"invalid {where}: {first['msg']}"


def one_line_errors(func: Callable[..., T]) -> Callable[..., T]:
    """Turn every failure into a single line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except ValidationError as exc:
            fail(_validation_message(exc))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:  # noqa: BLE001 - the CLI's contract is: no traceback
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            fail(message)
        raise AssertionError("unreachable")

    return wrapper


def reachable_url(host: str, port: int) -> str:
    """Where a server bound to ``host:port`` is reached from this machine (a wildcard bind
    address is reached on loopback)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def emit_json(data: Any) -> None:
    """One JSON document on stdout, nothing else."""

    def default(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        return str(value)

    sys.stdout.write(json.dumps(data, default=default, indent=2, sort_keys=True) + "\n")


def settings_for(data_dir: str | None) -> Settings:
    """The settings, with ``--data-dir`` over the environment when it is given."""
    return Settings(data_dir=data_dir) if data_dir else Settings()


async def load_runtime(data_dir: str | None = None, *, migrate: bool = True) -> Runtime:
    return await resolve_runtime(settings_for(data_dir), run_migrations=migrate)


@asynccontextmanager
async def service_pool(runtime: Runtime) -> AsyncIterator[Any]:
    pool = await create_pool(runtime.service_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


DataDirOption = typer.Option(
    None,
    "--data-dir",
    envvar="AI_AGENTS_DATA_DIR",
    help="Embedded database and local state directory",
)
JsonOption = typer.Option(False, "--json", help="Print one JSON document on stdout")


def progress_bar(*, spinner: bool = False) -> Progress:
    """The commands' progress bar on stderr (stdout stays for results and ``--json``):
    one row per task, done/total and elapsed time, cleared when it stops."""
    columns = [SpinnerColumn()] if spinner else []
    return Progress(
        *columns,
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )

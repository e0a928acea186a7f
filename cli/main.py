"""The `ai-agents` command line."""

from __future__ import annotations

import asyncio
import importlib
import warnings

import typer
import typer.main

# Typer ships its own click (typer._click); its group class speaks those types.
from typer._click.core import Command, Context
from typer.core import TyperGroup

from cli.support import DataDirOption, JsonOption, emit_json, one_line_errors, settings_for
from core.version import package_version
from db.migrate import migrate as run_migrations
from local_stack.ray_auth import use_ray_token_if_available
from local_stack.runtime import ConfigurationError, resolve_runtime
from pipeline.observability.logging_setup import configure_logging

# Each command's module is imported when that command runs (or when help lists them all), so
# `ai-agents tenant list` pays for the tenant code alone: name -> (module, Typer app or function).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cli.demo.command", "demo"),
    "serve": ("cli.serve", "serve"),
    "tenant": ("cli.tenants", "tenant_app"),
    "import": ("cli.import_data", "import_app"),
    "reenhance": ("cli.reenhance.command", "reenhance_app"),
    "reindex": ("cli.reindex.command", "reindex"),
    "explain": ("cli.explain", "explain"),
    "usage": ("cli.usage", "usage"),
    "eval": ("cli.evaluate.command", "eval_app"),
    "ranking": ("cli.ranking", "ranking_app"),
    "health": ("cli.health.command", "health"),
    "kuberay": ("cli.kuberay", "kuberay_app"),
}


def load_command(name: str) -> Command:
    """The click command of ``COMMANDS[name]``, its module imported now."""
    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)  # a group even with one subcommand (`eval`)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class LazyCommands(TyperGroup):
    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="ai-agents",
    cls=LazyCommands,
    help="AI Agents: enhance every new ServiceDesk Plus ticket with a researched private note.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(requested: bool) -> None:
    if requested:
        typer.echo(f"ai-agents {package_version()}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the installed version and exit.",
    ),
) -> None:
    """AI Agents: enhance every new ServiceDesk Plus ticket with a researched private note."""


@app.command()
@one_line_errors
def migrate(data_dir: str | None = DataDirOption, as_json: bool = JsonOption) -> None:
    """Apply database migrations and (re)create the restricted service role.

    Example: AI_AGENTS_MIGRATION_DATABASE_URL=postgresql://owner@db/app ai-agents migrate
    """
    settings = settings_for(data_dir)

    async def _migrate() -> list[str]:
        runtime = await resolve_runtime(settings, run_migrations=False)
        if runtime.owner_url is None:
            raise ConfigurationError("AI_AGENTS_MIGRATION_DATABASE_URL is required to migrate")
        return await run_migrations(runtime.owner_url, runtime.service_url)

    applied = asyncio.run(_migrate())
    if as_json:
        emit_json({"applied": applied})
    else:
        names = f": {', '.join(applied)}" if applied else ""
        typer.echo(f"applied {len(applied)} migration(s){names}")


def main() -> None:
    warnings.filterwarnings("ignore", module="platformdirs")
    configure_logging("WARNING")  # JSON lines, redacted; quiet unless something is wrong
    use_ray_token_if_available()  # reenhance/health from a second terminal reach a local Ray
    app()


if __name__ == "__main__":
    main()

"""The `ai-agents` command line."""

from __future__ import annotations

import asyncio
import warnings

import typer

from cli.demo.command import demo
from cli.evaluate.command import eval_app
from cli.explain import explain
from cli.health.command import health
from cli.import_data import import_app
from cli.kuberay import kuberay_app
from cli.reenhance.command import reenhance_app
from cli.reindex.command import reindex
from cli.serve import serve
from cli.support import DataDirOption, JsonOption, emit_json, one_line_errors, settings_for
from cli.tenants import tenant_app
from core.version import package_version
from db.migrate import migrate as run_migrations
from local_stack.ray_auth import use_ray_token_if_available
from local_stack.runtime import ConfigurationError, resolve_runtime
from pipeline.observability.logging_setup import configure_logging

app = typer.Typer(
    name="ai-agents",
    help="AI Agents: enhance every new ServiceDesk Plus ticket with a researched private note.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tenant_app, name="tenant")
app.add_typer(kuberay_app, name="kuberay")
app.add_typer(import_app, name="import")
app.add_typer(reenhance_app, name="reenhance")
app.add_typer(eval_app, name="eval")
app.command("demo")(demo)
app.command("serve")(serve)
app.command("health")(health)
app.command("reindex")(reindex)


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


app.command("explain")(explain)


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

"""`ai-agents tenant ...`: the same TenantAdmin the admin API uses."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Column, Table

from cli.support import (
    CommandError,
    DataDirOption,
    JsonOption,
    emit_json,
    load_runtime,
    one_line_errors,
    run_async,
    service_pool,
)
from core.settings import Settings
from core.tenant_types import Edition, WebhookAuthMode
from pipeline.retention.purge import RetentionPolicy
from pipeline.tenancy.admin import (
    ErasureReport,
    ErasureRequest,
    SdpUrlRefused,
    TenantAdmin,
    TenantCreate,
    TenantCredentials,
    TenantExists,
    UnknownTenant,
)
from pipeline.tenancy.credential_cipher import CredentialCipher

tenant_app = typer.Typer(help="Create and manage tenants (client companies).", no_args_is_help=True)
ACTOR = "cli"


T = TypeVar("T")


async def _with_admin(data_dir: str | None, action: Callable[[TenantAdmin], Awaitable[T]]) -> T:
    runtime = await load_runtime(data_dir)
    settings = Settings()
    async with service_pool(runtime) as pool:
        admin = TenantAdmin(
            pool,
            CredentialCipher.from_csv(runtime.encryption_keys),
            secret_grace=timedelta(hours=settings.secret_grace_hours),
            url_policy=settings.sdp_url_policy,
            retention=RetentionPolicy.from_settings(settings),
        )
        try:
            return await action(admin)
        except TenantExists as exc:
            raise RuntimeError(f"tenant {exc.args[0]!r} already exists") from None
        except UnknownTenant as exc:
            raise RuntimeError(str(exc)) from None
        except SdpUrlRefused as exc:
            raise RuntimeError(str(exc)) from None


def _print_credentials(creds: TenantCredentials, as_json: bool) -> None:
    if as_json:
        emit_json(creds)
        return
    typer.echo(f"tenant_id:       {creds.tenant_id}")
    if creds.webhook_secret:
        typer.echo(f"webhook_secret:  {creds.webhook_secret}")
    if creds.api_token:
        typer.echo(f"api_token:       {creds.api_token}")
    if creds.previous_secret_valid_until:
        typer.echo(f"previous secret valid until {creds.previous_secret_valid_until.isoformat()}")
    typer.echo("Store these now: they are not shown again.", err=True)


def _sdp_key(value: str | None, source: str | None) -> str:
    """The key from exactly one of --sdp-key and --sdp-key-file (a path, or - for stdin),
    without the line break a file or a pipe ends with."""
    if (value is None) == (source is None):
        raise CommandError("give the SDP key with exactly one of --sdp-key-file and --sdp-key")
    if value is not None:
        return value
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(str(source)).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read --sdp-key-file {source}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"--sdp-key-file {source} is not UTF-8 text") from None
    key = text.strip()
    if not key or "\n" in key:
        what = "stdin" if source == "-" else source
        raise CommandError(f"--sdp-key-file {what} must hold the key on one line")
    return key


@tenant_app.command("create")
@one_line_errors
def create(
    tenant_id: str = typer.Argument(..., help="Slug, e.g. acme"),
    sdp_url: str = typer.Option(..., "--sdp-url", help="ServiceDesk Plus base URL"),
    sdp_key_file: str | None = typer.Option(
        None,
        "--sdp-key-file",
        metavar="PATH|-",
        help="File holding the SDP API key (on-prem) or OAuth token; - reads it from stdin",
    ),
    sdp_key: str | None = typer.Option(
        None,
        "--sdp-key",
        help="The key itself (lands in shell history and `ps`; prefer --sdp-key-file)",
    ),
    sdp_edition: Edition = typer.Option("onprem", "--sdp-edition"),
    webhook_auth: WebhookAuthMode = typer.Option("hmac", "--webhook-auth"),
    name: str | None = typer.Option(None, "--name"),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a tenant and print its id, webhook secret and API token once.

    Example: ai-agents tenant create acme --sdp-url https://sdp.acme.example --sdp-key-file key.txt
    """
    spec = TenantCreate(
        id=tenant_id,
        name=name,
        sdp_url=sdp_url,
        sdp_key=_sdp_key(sdp_key, sdp_key_file),
        sdp_edition=sdp_edition,
        webhook_auth=webhook_auth,
    )
    creds = run_async(_with_admin(data_dir, lambda a: a.create(spec, actor=ACTOR)))
    _print_credentials(creds, as_json)


@tenant_app.command("list")
@one_line_errors
def list_(data_dir: str | None = DataDirOption, as_json: bool = JsonOption) -> None:
    """List tenants (no secrets) and the days their data is kept.

    The last column: days finished jobs, feedback, audit rows and LLM usage ledger rows are
    kept (the tenant's retention_days_* or the service's AI_AGENTS_RETENTION_DAYS_*).

    Example: ai-agents tenant list --json
    """
    tenants = run_async(_with_admin(data_dir, lambda a: a.list()))
    if as_json:
        emit_json([t.model_dump(mode="json") for t in tenants])
        return
    table = Table(
        "id",
        "name",
        "status",
        "edition",
        "webhook auth",
        "SDP URL",
        Column("days kept:\njobs/feedback/\naudit/LLM usage", no_wrap=True, min_width=14),
    )
    for t in tenants:
        kept = "/".join(f"{t.retention[k]:g}" for k in ("jobs", "feedback", "audit", "llm_usage"))
        table.add_row(
            t.id, t.name, t.status, t.sdp_edition, t.webhook_auth_mode, t.sdp_base_url, kept
        )
    Console().print(table)


@tenant_app.command("rotate-secret")
@one_line_errors
def rotate_secret(
    tenant_id: str, data_dir: str | None = DataDirOption, as_json: bool = JsonOption
) -> None:
    """New webhook secret; the old one stays valid for the grace period (default 24 h).

    Example: ai-agents tenant rotate-secret acme
    """
    creds = run_async(_with_admin(data_dir, lambda a: a.rotate_secret(tenant_id, actor=ACTOR)))
    _print_credentials(creds, as_json)


@tenant_app.command("rotate-token")
@one_line_errors
def rotate_token(
    tenant_id: str, data_dir: str | None = DataDirOption, as_json: bool = JsonOption
) -> None:
    """New API token; the old one stops working at once.

    Example: ai-agents tenant rotate-token acme
    """
    creds = run_async(_with_admin(data_dir, lambda a: a.rotate_token(tenant_id, actor=ACTOR)))
    _print_credentials(creds, as_json)


@tenant_app.command("disable")
@one_line_errors
def disable(
    tenant_id: str, data_dir: str | None = DataDirOption, as_json: bool = JsonOption
) -> None:
    """Disable a tenant: its webhooks are refused. Example: ai-agents tenant disable acme"""
    info = run_async(_with_admin(data_dir, lambda a: a.disable(tenant_id, actor=ACTOR)))
    if as_json:
        emit_json(info)
    else:
        typer.echo(f"tenant {info.id} is {info.status}")


@tenant_app.command("erase-requester")
@one_line_errors
def erase_requester(
    email: str = typer.Argument(..., help="The requester's e-mail, as SDP sends it"),
    tenant_id: str = typer.Option(..., "--tenant", help="The tenant the requester belongs to"),
    names: list[str] = typer.Option(
        [],
        "--name",
        help="Another name to erase besides those the requester's webhooks carried "
        "(e.g. a first name alone); repeatable",
    ),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Erase everything this service stored about one requester (data-protection request).

    Their resolved tickets (with embeddings and search terms) are deleted; their jobs lose
    their texts, proposals and explain records; feedback comments on their tickets go; every
    other mention of their e-mail or names becomes [erased]. The audit log records counts only.

    Example: ai-agents tenant erase-requester --tenant acme dana@client.example --name Dana
    """
    request = ErasureRequest(email=email, names=names)
    report: ErasureReport = run_async(
        _with_admin(data_dir, lambda a: a.erase_requester(tenant_id, request, actor=ACTOR))
    )
    if as_json:
        emit_json(report)
        return
    typer.echo(f"erasure {report.erasure_id} in tenant {report.tenant_id}")
    typer.echo(f"tickets: {', '.join(report.tickets) or 'none found by e-mail'}")
    for kind, n in report.counts.items():
        typer.echo(f"  {kind}: {n}")
    if report.counts.get("embeddings_deleted") or report.counts.get("kb_chunks_deleted"):
        typer.echo(
            "Run `ai-agents reindex` to re-embed the rewritten tickets and articles.", err=True
        )

"""`ai-agents usage [--tenant T] [--month YYYY-MM] [--json|--csv]`: what each tenant used.

The same report as ``GET /api/v1/usage`` (``pipeline.llm.usage``), read from the database the
service uses (``AI_AGENTS_DATABASE_URL`` or the embedded one in ``--data-dir``) as the
restricted service role: enhancements by outcome, distinct tickets, LLM attempts (every one
the provider answered and billed), tokens and cost, per tenant.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.support import (
    DataDirOption,
    JsonOption,
    emit_json,
    load_runtime,
    one_line_errors,
    run_async,
    service_pool,
)
from db.repositories.tenants import fetch_tenant
from pipeline.llm.usage import UsageReport, month_period, report_csv, this_month, usage_report


async def _load(tenant: str | None, month: str | None, data_dir: str | None) -> UsageReport:
    start, end = month_period(month) if month else this_month()
    runtime = await load_runtime(data_dir, migrate=False)
    async with service_pool(runtime) as pool:
        if tenant is not None:
            await fetch_tenant(pool, tenant)  # unknown tenant '<id>', not an empty report
        return await usage_report(pool, start, end, tenant_id=tenant)


def _print(report: UsageReport) -> None:
    table = Table(
        "tenant",
        "tickets",
        "llm",
        "context only",
        "skipped",
        "failed",
        "attempts",
        "tokens in",
        "tokens out",
        "USD",
        title=f"Usage {report.start:%Y-%m-%d %H:%M} – {report.end:%Y-%m-%d %H:%M} UTC",
    )
    for row in report.tenants:
        e = row.enhancements
        table.add_row(
            escape(row.tenant_id),
            *(str(n) for n in (row.tickets, e.llm, e.context_only, e.skipped, e.failed)),
            str(row.llm_attempts),
            f"{row.prompt_tokens:,}",
            f"{row.completion_tokens:,}",
            f"{row.cost_usd:.4f}",
        )
    if len(report.tenants) > 1:
        table.add_row(
            "[bold]all[/bold]",
            *(str(sum(getattr(r, k) for r in report.tenants)) for k in ("tickets",)),
            *(
                str(sum(getattr(r.enhancements, k) for r in report.tenants))
                for k in ("llm", "context_only", "skipped", "failed")
            ),
            str(sum(r.llm_attempts for r in report.tenants)),
            f"{sum(r.prompt_tokens for r in report.tenants):,}",
            f"{sum(r.completion_tokens for r in report.tenants):,}",
            f"{sum(r.cost_usd for r in report.tenants):.4f}",
        )
    Console().print(table)


@one_line_errors
def usage(
    tenant: str | None = typer.Option(None, "--tenant", help="One tenant (default: every one)"),
    month: str | None = typer.Option(
        None, "--month", help="A calendar month in UTC, YYYY-MM (default: this month so far)"
    ),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
    as_csv: bool = typer.Option(
        False, "--csv", help="One CSV line per tenant on stdout, for a billing system"
    ),
) -> None:
    """What each tenant used: enhancements by outcome (llm, context-only, skipped, failed),
    distinct tickets, LLM attempts, prompt and completion tokens and cost in USD. Every attempt
    the provider answered is counted: retries, unusable answers and superseded runs are billed.

    Example: ai-agents usage --month 2026-11 --csv > usage-2026-11.csv
    """
    if as_json and as_csv:
        raise ValueError("--json and --csv: choose one")
    if month is not None:
        month_period(month)  # a bad month fails before the database is opened
    report = run_async(_load(tenant, month, data_dir))
    if as_json:
        emit_json(report.model_dump(mode="json"))
    elif as_csv:
        sys.stdout.write(report_csv(report))
    else:
        _print(report)

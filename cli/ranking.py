"""`ai-agents ranking ...`: refit the learned ranking of similar tickets from recorded outcomes,
and show which model ranks a tenant's tickets (docs/architecture/retrieval-quality.md).

Reads and writes the database the service uses (``AI_AGENTS_DATABASE_URL`` or ``--data-dir``)
as the restricted service role: a tenant's examples inside its own transaction, the
deployment's through the ``app_*`` functions of migration 0013.
"""

from __future__ import annotations

from typing import Any

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
from core.settings import Settings
from db.pool import system_fetch
from db.repositories.ranking import deployment_model
from pipeline.retrieval.ranking.features import FEATURE_NAMES
from pipeline.retrieval.ranking.model import RankingModel, default_model
from pipeline.retrieval.ranking.refit import ScopeResult, refit
from pipeline.retrieval.ranking.store import RankingModels

ranking_app = typer.Typer(
    help="The learned ranking of similar tickets: refit it, show it.", no_args_is_help=True
)


async def _tenant_ids(pool: Any) -> list[str]:
    return [r["id"] for r in await system_fetch(pool, "SELECT id FROM app_list_tenants()")]


async def _fit(
    data_dir: str | None,
    tenants: list[str],
    deployment: bool,
    min_deployment: int,
    min_tenant: int,
    force: bool,
    dry_run: bool,
) -> list[ScopeResult]:
    runtime = await load_runtime(data_dir)
    async with service_pool(runtime) as pool:
        known = await _tenant_ids(pool)
        unknown = [t for t in tenants if t not in known]
        if unknown:
            raise LookupError(f"unknown tenant {unknown[0]!r}")
        return await refit(
            pool,
            tenants=tenants or known,
            min_deployment_outcomes=min_deployment,
            min_tenant_outcomes=min_tenant,
            deployment=deployment,
            force=force,
            dry_run=dry_run,
        )


@ranking_app.command("fit")
@one_line_errors
def fit(
    tenant: list[str] = typer.Option(
        [], "--tenant", help="Refit these tenants' own models (default: every tenant)"
    ),
    deployment: bool = typer.Option(
        True, "--deployment/--no-deployment", help="Refit the deployment's model too"
    ),
    min_deployment_outcomes: int | None = typer.Option(
        None,
        "--min-deployment-outcomes",
        min=1,
        help="Notes with a known outcome the deployment's refit needs "
        "(default AI_AGENTS_RANKING_MIN_DEPLOYMENT_OUTCOMES)",
    ),
    min_tenant_outcomes: int | None = typer.Option(
        None,
        "--min-tenant-outcomes",
        min=1,
        help="Notes with a known outcome a tenant needs for a model of its own "
        "(default AI_AGENTS_RANKING_MIN_TENANT_OUTCOMES)",
    ),
    force: bool = typer.Option(
        False, "--force", help="Install even when worse than the model in use on the newest notes"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Fit and check, store nothing"),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Refit the ranking from resolved tickets and votes; install each model only when it is
    not worse than the one in use on the newest notes it was not fitted on.

    Example: ai-agents ranking fit --tenant acme --json
    """
    settings = Settings()
    results = run_async(
        _fit(
            data_dir,
            tenant,
            deployment,
            min_deployment_outcomes or settings.ranking_min_deployment_outcomes,
            min_tenant_outcomes or settings.ranking_min_tenant_outcomes,
            force,
            dry_run,
        )
    )
    if as_json:
        emit_json({"results": [r.as_dict() for r in results]})
        return
    table = Table("scope", "notes", "installed", "model", "check: log-loss / ECE", "why")
    for r in results:
        check = (
            f"{r.before.get('log_loss')} → {r.after.get('log_loss')} / "
            f"{r.before.get('ece')} → {r.after.get('ece')}"
            if r.before
            else "-"
        )
        table.add_row(
            escape(r.tenant or "deployment"),
            str(r.notes),
            "yes" if r.installed else "no",
            f"#{r.model_id}" if r.model_id is not None else "-",
            check,
            escape(r.reason),
        )
    Console().print(table)


async def _show(data_dir: str | None, tenant: str | None) -> RankingModel:
    runtime = await load_runtime(data_dir, migrate=False)
    async with service_pool(runtime) as pool:
        if tenant is not None and tenant not in await _tenant_ids(pool):
            raise LookupError(f"unknown tenant {tenant!r}")
        models = RankingModels(pool, ttl_s=0)
        if tenant is not None:
            return await models.for_tenant(tenant)
        row = await deployment_model(pool)
        if row is None:
            return default_model()
        return RankingModel.from_json(
            row["model"], scope="deployment", model_id=row["id"], report=row["report"]
        )


@ranking_app.command("show")
@one_line_errors
def show(
    tenant: str | None = typer.Option(
        None, "--tenant", help="The model that ranks this tenant (default: the deployment's)"
    ),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """The model that ranks a tenant's similar tickets: each feature's weight, the relevance
    bar, the confidence's calibration, when and on how much it was fitted.

    Example: ai-agents ranking show --tenant acme
    """
    model = run_async(_show(data_dir, tenant))
    if as_json:
        emit_json({"model": model.label, **model.to_json(), "report": dict(model.report)})
        return
    console = Console()
    console.print(
        f"[bold]{escape(model.label)}[/bold] — fitted {model.fitted_at or 'unknown'} on "
        f"{model.examples} candidates"
    )
    table = Table("feature", "weight", title="Weights (logit = Σ weight × value + intercept)")
    for name, weight in zip(FEATURE_NAMES, model.weights, strict=True):
        table.add_row(name, f"{weight:+.3f}")
    table.add_row("(intercept)", f"{model.intercept:+.3f}")
    console.print(table)
    console.print(
        f"relevance bar: probability ≥ {model.bar.absolute:.2f} and ≥ "
        f"{model.bar.relative:.0%} of the best; KB bar: fused score ≥ "
        f"{model.kb_bar.absolute:.2f} and ≥ {model.kb_bar.relative:.0%} of the best"
    )
    slope, llm, intercept = model.calibration
    console.print(
        f"confidence: σ({slope:.3f} · logit(first probability) + {llm:.3f} · (LLM confidence − "
        f"0.5) + {intercept:.3f})"
    )


__all__ = ["ranking_app"]

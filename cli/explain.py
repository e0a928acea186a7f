"""`ai-agents explain ENHANCEMENT_ID`: why a note says what it says.

Reads the database the service uses (``AI_AGENTS_DATABASE_URL`` or the embedded one in
``--data-dir``) as the restricted service role; the tenant is looked up from the id.
"""

from __future__ import annotations

import json
import uuid

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
from pipeline.note.insight import Explanation, load_explanation


async def _load(enhancement_id: uuid.UUID, data_dir: str | None) -> Explanation | None:
    runtime = await load_runtime(data_dir, migrate=False)
    async with service_pool(runtime) as pool:
        return await load_explanation(
            pool, enhancement_id, tenant_id=None, retention_days=Settings().explain_retention_days
        )


def _candidates(console: Console, found: Explanation) -> None:
    candidates = found.candidates or {}
    for source, key in (("similar_tickets", "ticket_id"), ("kb_articles", "article_id")):
        items = candidates.get(source) or []
        table = Table("rank", key, "score", "why kept", title=f"Retrieval: {source}")
        for item in items:
            table.add_row(
                str(item["rank"]),
                escape(str(item[key])),
                f"{item['score']:.3f}",
                escape(item["why"]),
            )
        console.print(table if items else f"[dim]Retrieval: {source}: nothing found[/dim]")
    for asset in candidates.get("ip_assets") or []:
        console.print(
            f"asset {escape(asset['ip'])} → {escape(str(asset['hostname']))}: "
            f"{escape(asset['why'])}"
        )
    if candidates.get("unmatched_ips"):
        console.print("IPs not in the inventory: " + ", ".join(candidates["unmatched_ips"]))


def _billed(usage: list[dict[str, object]] | None) -> str:
    """Every attempt the provider answered (and billed), as the usage ledger has them."""
    if not usage:
        return "-"
    cost = sum(float(str(u.get("cost_usd") or 0)) for u in usage)
    outcomes = ", ".join(str(u.get("outcome")) for u in usage)
    return f"{len(usage)} ({outcomes}) / ${cost:.6f}"


def _ranking(console: Console, found: Explanation) -> None:
    """The learned ranking: every ranked candidate, then each feature's contribution to the
    first three candidates' logits (weight × value; with the intercept they add up to it)."""
    ranking = found.ranking
    if not ranking:
        return
    bar = ranking["bar"]
    console.print(
        f"[bold]Ranking[/bold] by {escape(ranking['model'])} of {ranking['candidates']} "
        f"candidates; relevance bar ≥ {bar['absolute']:.2f} and ≥ {bar['relative']:.0%} of the "
        "best"
    )
    table = Table("rank", "ticket", "probability", "shown")
    for item in ranking["ranked"]:
        table.add_row(
            str(item["rank"]),
            f"#{escape(item['ticket_id'])}",
            f"{item['probability']:.1%}",
            "yes" if item["shown"] else "no (under the bar)",
        )
    console.print(table)
    first = ranking["ranked"][:3]
    if not first:
        return
    console.print("Why they ranked so: each feature's contribution to the logit (its value)")
    why = Table("feature", *(f"#{escape(i['ticket_id'])}" for i in first))
    for name in ranking.get("feature_names") or first[0]["contributions"]:
        why.add_row(
            name,
            *(f"{i['contributions'][name]:+.2f} ({i['values'][name]:.2f})" for i in first),
        )
    why.add_row("(intercept)", *(f"{ranking['intercept']:+.2f}" for _ in first))
    why.add_row(
        "= logit → probability",
        *(
            f"{sum(i['contributions'].values()) + ranking['intercept']:+.2f} → "
            f"{i['probability']:.1%}"
            for i in first
        ),
    )
    console.print(why)


def _confidence(found: Explanation) -> str:
    if found.confidence is None:
        return "not recorded"
    inputs = found.confidence_inputs or {}
    llm = inputs.get("llm_confidence")
    outcome = (
        "outcome not known yet"
        if found.confidence_outcome is None
        else ("came true" if found.confidence_outcome else "did not come true")
    )
    return (
        f"{inputs.get('level', '')} {found.confidence:.0%} (first candidate "
        f"{inputs.get('first_probability', 0):.0%}"
        + (f", LLM's own {llm:.0%}" if isinstance(llm, int | float) else "")
        + f"); {outcome}"
    )


def _print(found: Explanation) -> None:
    console = Console()
    console.print(f"[bold]Enhancement {found.id}[/bold] — ticket #{escape(found.ticket_id)}")
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in found.stage_timings.items()) or "none"
    rows = [
        ("status / outcome", f"{found.status} / {found.outcome or '-'}"),
        ("attempts", f"{found.attempts} of {found.max_attempts}"),
        ("stage timings", timings),
        ("model", found.model or "-"),
        (
            "tokens / cost",
            f"{found.prompt_tokens or 0} + {found.completion_tokens or 0} / "
            f"${found.cost_usd or 0:.6f}",
        ),
        (
            "redacted from the prompt",
            ", ".join(f"{kind} {n}" for kind, n in sorted(found.redactions.items()))
            or ("nothing" if found.explain_available else "-"),
        ),
        ("billed attempts", _billed((found.llm or {}).get("usage"))),
        ("trace id", found.trace_id or "-"),
        ("note id", found.note_id or "-"),
        (
            "suggestion hit",
            "not known yet"
            if found.suggestion_hit is None
            else f"{found.suggestion_hit} (rank {found.suggestion_rank}, similarity "
            f"{found.suggestion_similarity})",
        ),
        ("confidence", _confidence(found)),
    ]
    table = Table(show_header=False)
    for name, value in rows:
        table.add_row(name, escape(value))
    console.print(table)
    for line in found.fallbacks:
        console.print(f"[yellow]fallback:[/yellow] {escape(line)}")
    if not found.explain_available:
        console.print(f"[dim]No prompt or retrieval record: {found.explain_missing_reason}[/dim]")
        return
    _candidates(console, found)
    _ranking(console, found)
    for message in found.prompt or []:
        console.rule(f"prompt: {message.get('role')}")
        console.print(escape(message.get("content", "")), soft_wrap=True)
    console.rule("raw model answer")
    reason = escape(str((found.llm or {}).get("reason")))
    console.print(
        escape(found.raw_answer) if found.raw_answer else f"[dim](no model answer: {reason})[/dim]",
        soft_wrap=True,
    )


@one_line_errors
def explain(
    enhancement_id: str = typer.Argument(
        ..., help="The enhancement id (from the note footer or the enhancements API)"
    ),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Why a note says what it says: retrieval candidates with scores, how the learned model
    ranked them (each feature's contribution), the confidence and its inputs, the prompt as the
    LLM saw it, what redaction took out of it (counts by kind), its raw answer, fallbacks, stage
    timings, attempts (each billed one with its cost), cost and the trace id.

    Example: ai-agents explain 7d1f6c1e-8a56-4c1b-9d0e-3b8f6f4d2a11 --json
    """
    try:
        ident = uuid.UUID(enhancement_id.strip())
    except ValueError:
        raise ValueError(f"not an enhancement id: {enhancement_id!r}") from None
    found = run_async(_load(ident, data_dir))
    if found is None:
        raise LookupError(f"enhancement {ident} not found")
    if as_json:
        emit_json(json.loads(found.model_dump_json()))
    else:
        _print(found)

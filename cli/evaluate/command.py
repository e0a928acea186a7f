"""`ai-agents eval retrieval`: how good the similar tickets of a note are, on a labelled set and
on a time-ordered replay of the demo history.

Prints, side by side, the first stage alone (full-text, vector, hybrid: today's five
precedents) and the learned second stage (its order, its relevance bar, its calibrated
confidence): recall@1, recall@5, MRR, precision of the shown precedents, noise per note, the
reliability table and the expected calibration error. The learned model is always scored on
queries it was not fitted on (see `cli/evaluate/run.py`); ``--write-model`` saves it (the
shipped default model is written this way).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import typer

from cli.support import JsonOption, emit_json, fail, one_line_errors, run_async

eval_app = typer.Typer(help="Measure retrieval quality on a labelled set.", no_args_is_help=True)


def _replay_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("expected a date as YYYY-MM-DD") from None


def _row(name: str, s: dict[str, Any]) -> str:
    precision = "-" if s.get("precision") is None else f"{s['precision']:.1%}"
    return (
        f"  {name:<15}{s['recall_at_1']:>9.1%}{s['recall_at_5']:>9.1%}{s['mrr']:>7.3f}"
        f"{precision:>11}{s['noise_per_note']:>8.2f}{s['shown_per_note']:>7.2f}"
    )


def _print_part(name: str, part: dict[str, Any]) -> None:
    typer.echo(f"\n{name}: {part['queries']} queries")
    typer.echo(
        f"  {'mode':<15}{'recall@1':>9}{'recall@5':>9}{'MRR':>7}{'precision':>11}"
        f"{'noise':>8}{'shown':>7}"
    )
    for mode, label in (
        ("hybrid", "first stage"),
        ("ranked_no_bar", "ranked, no bar"),
        ("ranked", "ranked + bar"),
    ):
        typer.echo(_row(label, part[mode]))
    ranked = part["ranked"]
    if "ece" in ranked:
        typer.echo(
            f"  confidence: mean {ranked['mean_confidence']:.1%}, first precedent right "
            f"{ranked['first_right']:.1%}, ECE {ranked['ece']:.3f}"
        )
        typer.echo("    stated      notes  mean stated  observed")
        for row in ranked["reliability"]:
            typer.echo(
                f"    {row['bin']:<11}{row['notes']:>6}{row['stated']:>13.1%}"
                f"{row['observed']:>10.1%}"
            )
    if "kb" in part:
        before, after = part["kb"]["without_bar"], part["kb"]["with_bar"]
        typer.echo(
            f"  KB articles: recall@3 {before['recall_at_3']:.1%} → {after['recall_at_3']:.1%}, "
            f"precision {before['precision'] or 0:.1%} → {after['precision'] or 0:.1%}, shown "
            f"{before['shown_per_note']:.2f} → {after['shown_per_note']:.2f} per note"
        )


def _contributions(candidate: dict[str, Any]) -> str:
    top = sorted(candidate["contributions"].items(), key=lambda kv: -abs(kv[1]))[:6]
    return " ".join(f"{name} {value:+.1f}" for name, value in top)


def _print_misses(rows: list[dict[str, Any]]) -> None:
    typer.echo(f"  misses ({len(rows)}): what ranked first, the best-ranked right precedent")
    causes: dict[str, int] = {}
    for row in rows:
        causes[row["cause"]] = causes.get(row["cause"], 0) + 1
    if causes:
        typer.echo("  causes: " + ", ".join(f"{n} {cause}" for cause, n in sorted(causes.items())))
    for row in rows:
        by = f", out-ranked by {', '.join(row['out_ranked_by'])}" if row["out_ranked_by"] else ""
        typer.echo(f"  - {row['query']} [{row['wording']}] {row['subject']!r}: {row['cause']}{by}")
        for label, candidate in (("first", row["first"]), ("right", row["right"])):
            if candidate is None:
                typer.echo(f"      {label}: none (the first stage found no right precedent)")
                continue
            rank = f" at rank {row['right_rank']}" if label == "right" else ""
            typer.echo(
                f"      {label}{rank}: #{candidate['ticket_id']} {candidate['subject'][:60]!r} "
                f"p={candidate['probability']:.2f}: {_contributions(candidate)}"
            )


@eval_app.command("retrieval")
@one_line_errors
def retrieval(
    set_file: Path | None = typer.Option(
        None, "--set", help="Labelled cases, JSON Lines (needed unless --replay is given)"
    ),
    replay: str | None = typer.Option(
        None,
        "--replay",
        help="Fit on the demo history created before this date (YYYY-MM-DD), score after it",
    ),
    show_misses: bool = typer.Option(
        False,
        "--misses",
        help="Print each scored query whose note does not show a right precedent first, and why",
    ),
    write_model: Path | None = typer.Option(
        None, "--write-model", help="Save the fitted model as JSON (the default model's form)"
    ),
    as_json: bool = JsonOption,
) -> None:
    """Recall@1/@5, MRR, precision of shown precedents, noise per note, reliability table and
    ECE: the first stage against the learned ranking, never scored on what it was fitted on.

    Example: ai-agents eval retrieval --set simulators/demo_data/retrieval_eval.jsonl
    Example: ai-agents eval retrieval --replay 2025-12-01
    Example: ai-agents eval retrieval --set simulators/demo_data/retrieval_eval.jsonl --misses
    """
    # the scratch database, the embedding model and the demo data: imported when it runs
    from cli.evaluate.run import run_eval
    from pipeline.retrieval.embedder import service_embedder
    from pipeline.retrieval.evaluation import load_eval_set
    from simulators.demo_data import TENANTS

    when = _replay_date(replay)
    if set_file is None and when is None:
        fail("give --set FILE, --replay DATE or both")
    cases = load_eval_set(set_file) if set_file is not None else []
    unknown = sorted({c.tenant for c in cases} - set(TENANTS))
    if unknown:
        fail(f"tenant(s) {', '.join(unknown)} are not demo tenants ({', '.join(TENANTS)})")
    run = run_async(run_eval(cases, replay=when))
    if write_model is not None:
        document = {**run.model.to_json(), "report": run.fit}
        write_model.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    rows = [run.modes[m].as_dict() for m in ("fulltext", "vector", "hybrid") if m in run.modes]
    model = service_embedder().model
    if as_json:
        emit_json(
            {
                "cases": run.cases,
                "embedding_model": model,
                "replay": str(when) if when else None,
                "modes": rows,
                "learned": {"model": run.model.to_json(), "fit": run.fit, "scored": run.scored},
            }
        )
        return
    typer.echo(f"{run.cases} cases, embedding model {model}")
    if rows:
        typer.echo("\nfirst stage on the whole set (the weights were chosen on this set)")
        typer.echo(f"  {'mode':<15}{'recall@1':>9}{'recall@5':>9}{'MRR':>7}")
        for row in rows:
            typer.echo(
                f"  {row['mode']:<15}{row['recall_at_1']:>9.1%}{row['recall_at_5']:>9.1%}"
                f"{row['mrr']:>7.3f}"
            )
    bar, kb_bar = run.model.bar, run.model.kb_bar
    typer.echo(
        f"\nlearned model: fitted on {run.fit['queries']} queries ({run.fit['candidates']} "
        f"candidates); bar: probability ≥ {bar.absolute:.2f} and ≥ {bar.relative:.0%} of the "
        f"best; KB bar: fused score ≥ {kb_bar.absolute:.2f} and ≥ {kb_bar.relative:.0%} of the "
        "best"
    )
    for name, part in run.scored.items():
        _print_part(name, part)
        if show_misses:
            _print_misses(part["misses"])


__all__ = ["eval_app"]

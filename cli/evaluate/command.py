"""`ai-agents eval retrieval --set FILE.jsonl [--json]`: recall@1, recall@5 and MRR of the
similar-ticket search for full-text only, vector only and hybrid, side by side.

The set's tickets are matched against the demo tenants' resolved history (``acme``,
``globex``; the same generated tickets `ai-agents demo` imports), loaded into a scratch
embedded database that is deleted afterwards, so an evaluation never touches a live tenant.
The embedder is the configured one (``AI_AGENTS_EMBEDDING_*``; unset: the offline model).
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.support import JsonOption, emit_json, fail, one_line_errors, run_async

eval_app = typer.Typer(help="Measure retrieval quality on a labelled set.", no_args_is_help=True)


@eval_app.command("retrieval")
@one_line_errors
def retrieval(
    set_file: Path = typer.Option(..., "--set", help="Labelled cases, JSON Lines"),
    as_json: bool = JsonOption,
) -> None:
    """Recall@1, recall@5 and MRR: full-text, vector and hybrid, side by side.

    Example: ai-agents eval retrieval --set simulators/demo_data/retrieval_eval.jsonl
    """
    # the scratch database, the embedding model and the demo data: imported when it runs
    from cli.evaluate.run import run_eval
    from pipeline.retrieval.embedder import service_embedder
    from pipeline.retrieval.evaluation import load_eval_set
    from simulators.demo_data import TENANTS

    cases = load_eval_set(set_file)
    unknown = sorted({c.tenant for c in cases} - set(TENANTS))
    if unknown:
        fail(f"tenant(s) {', '.join(unknown)} are not demo tenants ({', '.join(TENANTS)})")
    scores = run_async(run_eval(cases))
    rows = [scores[m].as_dict() for m in ("fulltext", "vector", "hybrid")]
    if as_json:
        emit_json({"cases": len(cases), "embedding_model": service_embedder().model, "modes": rows})
        return
    typer.echo(f"{len(cases)} cases, embedding model {service_embedder().model}")
    typer.echo(f"{'mode':<10}{'recall@1':>10}{'recall@5':>10}{'MRR':>8}")
    for row in rows:
        typer.echo(
            f"{row['mode']:<10}{row['recall_at_1']:>10.1%}{row['recall_at_5']:>10.1%}"
            f"{row['mrr']:>8.3f}"
        )


__all__ = ["eval_app"]

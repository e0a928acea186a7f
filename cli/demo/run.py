"""What `ai-agents demo` runs: the local stack (embedded PostgreSQL, simulators, Ray and Serve),
demo data, webhooks, and the report. Imported only when the command runs (`cli/demo/command.py`), so
the CLI starts without the simulators' and Ray's imports."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.demo.quality import learn, phase_quality, resolve_some
from cli.demo.steps import (
    DemoOptions,
    DemoResult,
    configure_demo_environment,
    demo_simulators,
    fire_webhooks,
    import_demo_data,
    prepare_tenants,
    start_ray_and_serve,
    stop_ray_and_serve,
    wait_for_all,
)
from cli.support import emit_json, err, load_runtime, settings_for
from db.pool import create_pool, verify_service_role
from local_stack.processes import RunRecorder, clean_up_after_crash
from local_stack.ray_auth import DASHBOARD_TOKEN_HINT

out = Console()


async def _wait_for_stop_signal() -> None:
    """Until Ctrl-C or SIGTERM. Signal handlers belong to the main thread, i.e. this loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _print_result(result: DemoResult, imported: dict[str, dict[str, int]]) -> None:
    summary = result.summary()
    table = Table(title="AI Agents demo", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for tenant, counts in imported.items():
        table.add_row(
            f"imported for {tenant}",
            f"{counts['tickets']} tickets, {counts['kb']} KB, {counts['assets']} assets",
        )
    table.add_row("tickets enhanced", str(summary["tickets"]))
    for status, count in sorted(summary["statuses"].items()):
        table.add_row(f"  {status}", str(count))
    table.add_row("notes written", str(summary["notes_written"]))
    table.add_row("end-to-end p50 / p95", f"{summary['p50_s']} s / {summary['p95_s']} s")
    for tenant, hits in sorted(result.suggestion_hits.items()):
        table.add_row(
            f"suggestion hit rate {tenant}",
            f"{hits['hit_rate']:.0%} ({hits['hits']} of {hits['resolved']} resolved)",
        )
    table.add_row("wall time", f"{summary['seconds']} s")
    out.print(table)
    if result.learning:
        out.print(_learning_table(result.learning))
    failed = [e for e in result.enhancements if e["status"] == "failed"]
    for item in failed[:5]:
        out.print(f"[red]failed[/red] {item['tenant']}/{item['ticket_id']}: {item['error']}")
    if result.notes:
        note = result.notes[0]
        out.rule(
            f"Private note on {note['tenant']} ticket {note['ticket_id']} "
            "(as the technician sees it)"
        )
        out.print(note["text"])
        if note.get("feedback_links"):
            out.print("Feedback links (open one, then Confirm):")
            for link in note["feedback_links"]:
                out.print(f"  {link['label']:>15}  {link['url']}", soft_wrap=True)
        out.rule()
    for name, url in result.urls.items():
        out.print(f"{name:>14}: {url}")
    out.print(
        f"{'':>14}  (the Ray dashboard is {DASHBOARD_TOKEN_HINT}; metrics need "
        f"Authorization: Bearer <metrics_token from local-secrets.json in the data dir>)"
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _learning_table(learning: dict[str, Any]) -> Table:
    """The notes before and after the ranking learned from the first batch's resolutions."""
    phases = [(name, learning[name]) for name in ("before", "after") if name in learning]
    table = Table(title="Learning from resolved tickets", show_header=True)
    table.add_column("measure")
    for name, phase in phases:
        table.add_column(f"{name} ({phase['notes']} notes)", justify="right")
    rows = (
        ("tickets resolved", lambda p: str(p["resolved"])),
        ("suggestion hit rate", lambda p: _percent(p["hit_rate"])),
        ("first precedent had the fix", lambda p: _percent(p["first_right"])),
        ("confidence stated (mean)", lambda p: _percent(p["mean_confidence"])),
        ("calibration error (ECE)", lambda p: "-" if p["ece"] is None else f"{p['ece']:.2f}"),
        ("precedents shown per note", lambda p: str(p["shown_per_note"] or "-")),
        ("longest note (words)", lambda p: str(p["max_words"] or "-")),
        ("ranked by", lambda p: ", ".join(p["models"]) or "-"),
    )
    for label, cell in rows:
        table.add_row(label, *(cell(phase) for _, phase in phases))
    refit = learning.get("refit")
    if refit:
        table.caption = (
            f"refit between the batches: {'installed' if refit['installed'] else 'not installed'}"
            f" — {refit['reason']} ({refit['notes']} notes)"
        )
    return table


async def _batch(
    pool: Any, base: str, sims: Any, creds: Any, count: int, start: int, progress: Any
) -> DemoResult:
    """Fire ``count`` webhooks from the ``start``-th demo ticket and wait for every note."""
    sent = await fire_webhooks(base, sims, creds, count, start=start)
    task = progress.add_task("enhancing", total=len(sent))
    return await wait_for_all(pool, sent, sims, lambda done: progress.update(task, completed=done))


async def _learning_demo(
    pool: Any, base: str, sims: Any, creds: Any, tickets: int, as_json: bool, say: Any
) -> DemoResult:
    """Two batches of new tickets: the first is enhanced and resolved, the ranking refits
    from those outcomes, then the second is enhanced and resolved the same way."""
    first = (tickets + 1) // 2
    with Progress(
        TextColumn("enhancing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=as_json,
    ) as progress:
        say(f"Firing {first} new-ticket webhooks from the SDP simulator…")
        result = await _batch(pool, base, sims, creds, first, 0, progress)
        say("Resolving them in the SDP simulator (resolved-ticket webhooks)…")
        hits = await resolve_some(base, sims.sdp, creds, result.enhancements)
        result.learning["before"] = await phase_quality(pool, result.enhancements, result.notes)
        if tickets > first:
            say("Refitting the ranking from those resolutions, then the next batch…")
            result.learning["refit"] = (await learn(pool)).as_dict()
            second = await _batch(pool, base, sims, creds, tickets - first, first, progress)
            more = await resolve_some(base, sims.sdp, creds, second.enhancements)
            result.learning["after"] = await phase_quality(pool, second.enhancements, second.notes)
            result.enhancements += second.enhancements
            result.notes += second.notes
            for tenant, counts in more.items():
                total = hits.setdefault(tenant, {"resolved": 0, "hits": 0})
                total["resolved"] += counts["resolved"]
                total["hits"] += counts["hits"]
                total["hit_rate"] = round(total["hits"] / total["resolved"], 3)
    result.suggestion_hits = hits
    return result


async def run_demo(
    options: DemoOptions,
    data_dir: str | None,
    as_json: bool,
    keep_running: bool,
    json_out: TextIO | None = None,
) -> int:
    started = time.monotonic()
    settings = settings_for(data_dir)
    say = (lambda *_: None) if as_json else err.print
    say("[bold]Starting[/bold] embedded PostgreSQL, simulators, Ray and Serve…")
    clean_up_after_crash(settings.data_dir)
    runtime = await load_runtime(data_dir)
    sims = demo_simulators(options)
    recorder: RunRecorder | None = None
    try:
        configure_demo_environment(runtime, sims, options)
        pool = await create_pool(runtime.service_url, min_size=1, max_size=4)
        try:
            await verify_service_role(pool)
            creds = await prepare_tenants(pool, runtime, settings.data_dir, sims.sdp_url)
            say("Importing demo history, KB articles and assets…")
            imported = await import_demo_data(pool, runtime)
            recorder = RunRecorder(settings.data_dir, "demo").start()
            await asyncio.to_thread(start_ray_and_serve, options)
            recorder.refresh()
            base = f"http://127.0.0.1:{options.http_port}"
            result = await _learning_demo(pool, base, sims, creds, options.tickets, as_json, say)
        finally:
            await pool.close()
        result.seconds = time.monotonic() - started
        result.urls = {
            "API docs": f"{base}/docs",
            "metrics": f"{base}/metrics",
            "Ray dashboard": f"http://127.0.0.1:{options.dashboard_port}",
            "SDP simulator": sims.sdp_url,
            "LLM simulator": sims.llm_url,
        }
        if as_json:  # printed after Ray shuts down: Ray writes shutdown chatter to stdout
            report = {
                "summary": result.summary(),
                "imported": imported,
                "enhancements": result.enhancements,
                "notes": result.notes,
                "urls": result.urls,
            }
        else:
            _print_result(result, imported)
        if keep_running:
            say("Running; Ctrl-C stops everything.")
            await _wait_for_stop_signal()
        ok = result.all_done() and len(result.notes) > 0
    finally:
        await asyncio.to_thread(stop_ray_and_serve)
        sims.stop()
        if recorder is not None:
            recorder.stop()
    if as_json:
        with contextlib.redirect_stdout(json_out or sys.stdout):
            emit_json(report)
    return 0 if ok else 1

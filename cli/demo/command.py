"""`ai-agents demo`: the command and its options. What it runs is in `cli/demo/run.py`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import typer

from cli.support import DataDirOption, IngressChoice, IngressOption, JsonOption, one_line_errors
from core.settings import Settings


@one_line_errors
def demo(
    tickets: int = typer.Option(20, "--tickets", min=1, max=60, help="New tickets to enhance"),
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Leave everything up afterwards (Ctrl-C stops)"
    ),
    port: int = typer.Option(8000, "--port", help="HTTP port of the Serve ingress"),
    ingress: IngressChoice | None = IngressOption,
    dashboard_port: int = typer.Option(8265, "--dashboard-port", help="Ray dashboard port"),
    llm_latency: float = typer.Option(1.0, "--llm-latency", help="Simulated LLM latency (s)"),
    configured_llm: bool = typer.Option(
        False,
        "--use-configured-llm",
        help="Use AI_AGENTS_LLM_* (e.g. OpenRouter) instead of the LLM simulator",
    ),
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Run the whole system on this machine and enhance demo tickets end to end.

    Example: ai-agents demo --tickets 20
    """
    from cli.demo.run import run_demo  # the local stack (simulators, Ray): only when it runs
    from cli.demo.steps import DemoOptions

    logging.getLogger("ray").setLevel(logging.ERROR)
    options = DemoOptions(
        tickets=tickets,
        http_port=port,
        dashboard_port=dashboard_port,
        llm_latency_s=llm_latency,
        use_configured_llm=configured_llm,
        ingress=ingress.mode if ingress else Settings().serve_ingress,
    )
    if as_json:  # Ray's driver prints its own log lines on stdout; keep stdout for the JSON
        real_stdout = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            code = asyncio.run(
                run_demo(options, data_dir, as_json, keep_running, json_out=real_stdout)
            )
    else:
        code = asyncio.run(run_demo(options, data_dir, as_json, keep_running))
    raise typer.Exit(code)

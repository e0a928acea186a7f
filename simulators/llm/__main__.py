"""``python -m simulators.llm --port 8091``: run the LLM simulator as its own process.

Point the service at ``http://127.0.0.1:8091/api/v1`` (OpenRouter layout) or ``.../v1``.
Faults and latency can be changed at run time through the ``/_sim`` control API.
"""

from __future__ import annotations

import argparse

import uvicorn

from simulators.llm.app import create_app
from simulators.llm.key_account import KeyLimits
from simulators.llm.state import LLMSimulatorState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.llm",
        description="OpenAI/OpenRouter-compatible LLM simulator. "
        "Example: python -m simulators.llm --port 8091 --latency 2 --jitter 20",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--latency", type=float, default=0.0, help="mean latency in seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="latency jitter in percent")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help="accepted bearer key (repeatable); default: any non-empty key",
    )
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute per key (429)")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="requests in progress per key (429)"
    )
    parser.add_argument("--credits", type=float, default=None, help="credit in USD (then 402)")
    parser.add_argument("--seed", type=int, default=0, help="seed for jitter and random faults")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    state = LLMSimulatorState(
        api_keys=args.api_keys, latency_s=args.latency, jitter_pct=args.jitter, seed=args.seed
    )
    state.keys.configure(
        KeyLimits(
            requests_per_minute=args.rpm, concurrency=args.concurrency, credits_usd=args.credits
        )
    )
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()

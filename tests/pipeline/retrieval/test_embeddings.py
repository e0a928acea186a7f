"""Both embedding providers for real: the offline wordllama model (loaded with networking
unavailable) and the OpenAI-compatible provider over real HTTP against the LLM simulator's
``/v1/embeddings``, with its retries, timeouts and rate-limit hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from pipeline.retrieval.embeddings import (
    WORDLLAMA_MODEL,
    EmbeddingError,
    EmbeddingSettings,
    OpenAIEmbedder,
    OpenAIEmbeddingConfig,
    WordLlamaEmbedder,
    build_embedder,
)
from simulators.llm import LLMSimulatorState, create_app
from simulators.serving import ServerHandle, run_in_thread

KEY = "sk-test-embeddings"

OFFLINE_SCRIPT = textwrap.dedent("""
    import json, socket
    def refuse(*args, **kwargs):
        raise OSError("network access attempted: " + repr(args[:1]))
    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    from pipeline.retrieval.embeddings import WordLlamaEmbedder
    e = WordLlamaEmbedder()
    a, b, c = e.embed_sync(["the screen goes black when I plug in the projector",
                            "external display not detected after docking",
                            "reset my email password"])
    dot = lambda x, y: sum(p * q for p, q in zip(x, y))
    print(json.dumps({"dims": len(a), "near": dot(a, b), "far": dot(a, c)}))
""")


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_offline_model_loads_and_embeds_with_networking_unavailable() -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": "/nonexistent/hf-home",
        "NO_PROXY": "*",
    }
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["dims"] == 256
    assert result["near"] > result["far"] + 0.2  # meaning, not random vectors


async def test_offline_embedder_is_normalised_and_deterministic() -> None:
    embedder = build_embedder(EmbeddingSettings())
    assert isinstance(embedder, WordLlamaEmbedder)
    assert (embedder.model, embedder.dimensions) == (WORDLLAMA_MODEL, 256)
    first, again = (
        await embedder.embed(["VPN drops every hour"]),
        await embedder.embed(["VPN drops every hour"]),
    )
    assert first == again and abs(cosine(first[0], first[0]) - 1.0) < 1e-5
    assert await embedder.embed([]) == []


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[LLMSimulatorState, ServerHandle]]:
    state = LLMSimulatorState(api_keys=[KEY])
    with run_in_thread(create_app(state), graceful_shutdown_s=0.2) as handle:
        yield state, handle


def remote(handle: ServerHandle, **overrides: Any) -> OpenAIEmbedder:
    config = OpenAIEmbeddingConfig(
        base_url=f"{handle.url}/v1",
        api_key=KEY,
        model="text-embedding-3-small",
        dimensions=128,
        batch_size=3,
        timeout_s=2.0,
        backoff_base_s=0.01,
    )
    return OpenAIEmbedder(replace(config, **overrides))


async def test_remote_provider_batches_and_matches_the_offline_model(
    sim: tuple[LLMSimulatorState, ServerHandle],
) -> None:
    state, handle = sim
    state.reset()
    calls: list[int] = []

    async def before_call() -> None:  # the tenant rate-limit hook, once per HTTP request
        calls.append(1)

    embedder = remote(handle).with_before_call(before_call)
    texts = [f"printer jam on floor {i}" for i in range(7)]
    vectors = await embedder.embed(texts)
    assert len(vectors) == 7 and all(len(v) == 128 for v in vectors)
    assert len(calls) == 3  # 7 texts in batches of 3
    sent = [r for r in state.requests if r.path == "/v1/embeddings"]
    assert [r.status for r in sent] == [200, 200, 200]
    assert sent[0].body["dimensions"] == 128 and sent[0].model == "text-embedding-3-small"
    near, far = await embedder.embed(
        ["laptop will not connect to wifi", "approve purchase order for chairs"]
    )
    anchor = (await embedder.embed(["wireless network unavailable on notebook"]))[0]
    assert cosine(anchor, near) > cosine(anchor, far)


async def test_remote_provider_retries_429_and_5xx_then_gives_up_clearly(
    sim: tuple[LLMSimulatorState, ServerHandle],
) -> None:
    state, handle = sim
    state.reset()
    state.add_fault("rate_limit", count=1, retry_after=0)
    state.add_fault("server_error", count=1, status=503)
    assert len(await remote(handle).embed(["disk full"])) == 1
    assert [r.status for r in state.requests] == [429, 503, 200]

    state.reset()
    state.add_fault("server_error", count=None, status=502)
    with pytest.raises(EmbeddingError, match="after 4 attempts"):
        await remote(handle).embed(["disk full"])
    assert len(state.requests) == 4


async def test_remote_provider_times_out_and_refuses_bad_keys_without_retrying(
    sim: tuple[LLMSimulatorState, ServerHandle],
) -> None:
    state, handle = sim
    state.reset()
    state.add_fault("timeout", count=None, seconds=5)
    with pytest.raises(EmbeddingError, match="APITimeoutError"):
        await remote(handle, timeout_s=0.3, max_attempts=2).embed(["slow"])
    state.reset()
    with pytest.raises(EmbeddingError, match="refused \\(401\\)"):
        await remote(handle, api_key="wrong").embed(["x"])
    assert len(state.requests) == 1

"""Text → vector, behind one small interface with two providers.

* :class:`WordLlamaEmbedder` — the default: the offline model of ``core.wordllama`` (static
  word embeddings shipped inside the ``wordllama`` wheel; no network, cheap on CPU).
* :class:`OpenAIEmbedder` — any OpenAI-compatible ``/embeddings`` endpoint through the
  ``openai`` client (e.g. ``text-embedding-3-small``): batched, retried with back-off on
  429/5xx/timeouts, a per-attempt timeout, and a ``before_call`` hook so callers put each
  request through the tenant's LLM rate limit exactly like a chat call.

Vectors come back L2-normalised, so cosine distance and inner product agree. Each stored
vector records ``model`` and ``dimensions``; a different embedder makes stored vectors stale
(``ai-agents reindex`` re-embeds them) instead of silently comparing incomparable spaces.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from core import wordllama
from core.wordllama import WORDLLAMA_MODEL

if TYPE_CHECKING:  # imported where used: ~0.6 s, and only an OpenAI-compatible endpoint needs it
    import openai

BeforeCall = Callable[[], Awaitable[None]]


class Embedder(Protocol):
    """What retrieval, indexing and feedback need from an embedding model."""

    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingError(Exception):
    """The provider could not embed the texts (retries exhausted or a refusal)."""


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(x) / norm for x in vector]


class WordLlamaEmbedder:
    """Offline default: wordllama's 256-dimension static embeddings, computed in-process."""

    model = WORDLLAMA_MODEL
    dimensions = wordllama.DIMENSIONS

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            return wordllama.embed(texts)
        except wordllama.ModelFilesMissing as exc:
            raise EmbeddingError(str(exc)) from exc

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # CPU work: off the event loop so other jobs keep moving.
        return await asyncio.to_thread(self.embed_sync, list(texts))


@dataclass(frozen=True)
class OpenAIEmbeddingConfig:
    base_url: str
    api_key: str
    model: str = "text-embedding-3-small"
    dimensions: int = 256
    batch_size: int = 64
    timeout_s: float = 30.0
    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    send_dimensions: bool = True  # text-embedding-3-* accept it; older models refuse it


class OpenAIEmbedder:
    """An OpenAI-compatible ``/embeddings`` endpoint (``openai`` client, our own retries)."""

    def __init__(
        self,
        config: OpenAIEmbeddingConfig,
        *,
        before_call: BeforeCall | None = None,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        import openai

        self.config = config
        self.model = config.model
        self.dimensions = config.dimensions
        self._before_call = before_call
        self._client = client or openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key,
            max_retries=0,
            timeout=config.timeout_s,
        )

    def with_before_call(self, before_call: BeforeCall | None) -> OpenAIEmbedder:
        """The same client with a per-tenant rate-limit hook (one ``OpenAIEmbedder`` per call)."""
        return OpenAIEmbedder(self.config, before_call=before_call, client=self._client)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        clipped = [(t or " ")[: wordllama.MAX_EMBED_CHARS] for t in texts]
        out: list[list[float]] = []
        for start in range(0, len(clipped), self.config.batch_size):
            out += await self._batch(clipped[start : start + self.config.batch_size])
        return out

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        import openai

        extra: dict[str, Any] = (
            {"dimensions": self.dimensions} if self.config.send_dimensions else {}
        )
        last = "no attempt made"
        for attempt in range(1, self.config.max_attempts + 1):
            if self._before_call is not None:
                await self._before_call()
            try:
                response = await self._client.embeddings.create(
                    model=self.model, input=texts, encoding_format="float", **extra
                )
            except (
                openai.RateLimitError,
                openai.InternalServerError,
                openai.APITimeoutError,
                openai.APIConnectionError,
            ) as exc:
                last = f"{type(exc).__name__}: {str(exc)[:200]}"
                await asyncio.sleep(self._delay(attempt, exc))
                continue
            except openai.APIStatusError as exc:  # 400/401/403/404: asking again will not help
                raise EmbeddingError(
                    f"embedding refused ({exc.status_code}): {str(exc)[:200]}"
                ) from exc
            return self._vectors(response, len(texts))
        raise EmbeddingError(f"embedding failed after {self.config.max_attempts} attempts: {last}")

    def _vectors(self, response: Any, expected: int) -> list[list[float]]:
        rows = sorted(response.data, key=lambda d: d.index)
        if len(rows) != expected:
            raise EmbeddingError(f"endpoint returned {len(rows)} vectors for {expected} texts")
        vectors = [_normalise(row.embedding) for row in rows]
        if any(len(v) != self.dimensions for v in vectors):
            raise EmbeddingError(
                f"endpoint returned {len(vectors[0])} dimensions, configured "
                f"{self.dimensions} (AI_AGENTS_EMBEDDING_DIMENSIONS)"
            )
        return vectors

    def _delay(self, attempt: int, exc: Exception) -> float:
        response = getattr(exc, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        try:
            if header is not None:
                return min(float(header), self.config.backoff_max_s)
        except ValueError:
            pass
        base = min(self.config.backoff_base_s * 2 ** (attempt - 1), self.config.backoff_max_s)
        return base * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class EmbeddingSettings:
    """What the service's settings say about embeddings (no base URL: the offline model)."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    dimensions: int | None = None
    timeout_s: float = 30.0


def build_embedder(settings: EmbeddingSettings) -> Embedder:
    """The offline model unless an endpoint is configured."""
    if not settings.base_url:
        return WordLlamaEmbedder()
    config = OpenAIEmbeddingConfig(
        base_url=settings.base_url, api_key=settings.api_key or "-", timeout_s=settings.timeout_s
    )
    if settings.model:
        config = replace(config, model=settings.model)
    if settings.dimensions:
        config = replace(config, dimensions=settings.dimensions)
    return OpenAIEmbedder(config)


def with_rate_limit(embedder: Embedder, before_call: BeforeCall | None) -> Embedder:
    """Put a remote embedder's calls through a tenant's limiter; local models need none."""
    if isinstance(embedder, OpenAIEmbedder):
        return embedder.with_before_call(before_call)
    return embedder


def ticket_text(subject: str, description: str) -> str:
    """What a ticket is embedded as, identically for history and live tickets."""
    return f"{subject.strip()}\n{description.strip()}".strip()

"""The service's embedder, built once per process from ``AI_AGENTS_EMBEDDING_*``."""

from __future__ import annotations

from functools import lru_cache

from pipeline.embeddings import Embedder, EmbeddingSettings, build_embedder
from serve_app.settings import Settings, get_settings


def embedding_settings(settings: Settings) -> EmbeddingSettings:
    key = settings.embedding_api_key
    return EmbeddingSettings(base_url=settings.embedding_base_url,
                             api_key=key.get_secret_value() if key else None,
                             model=settings.embedding_model,
                             dimensions=settings.embedding_dimensions,
                             timeout_s=settings.llm_timeout_s)


@lru_cache(maxsize=1)
def service_embedder() -> Embedder:
    """One per process: the offline model is loaded once and shared."""
    return build_embedder(embedding_settings(get_settings()))

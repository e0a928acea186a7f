"""The offline embedding model: wordllama's 256-dimension static word embeddings, loaded from
the files its wheel ships (no network, no download; cheap on CPU).

The service's default embedder (``pipeline.retrieval.embeddings.WordLlamaEmbedder``) and the LLM
simulator's ``/embeddings`` both embed with it, so a service pointed at the simulator ranks as it
would with its own model. ``wordllama``'s own loader looks for the tokenizer under
``tokenizer/`` (the wheel has ``tokenizers/``) and then tries a Hugging Face download, which is
why it is not used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WORDLLAMA_MODEL = "wordllama/l2_supercat_256"
DIMENSIONS = 256
MAX_EMBED_CHARS = 4000  # a ticket's first ~700 words; more only dilutes a mean of words


class ModelFilesMissing(RuntimeError):
    """The installed wheel lacks the weights or the tokenizer."""


class _WordLlamaModel:
    """The loaded model, shared by every embedder in the process (loading takes ~1 s)."""

    _lock = threading.Lock()
    _inference: Any = None

    @classmethod
    def get(cls) -> Any:
        with cls._lock:
            if cls._inference is None:
                cls._inference = _load_wordllama()
            return cls._inference


def wordllama_files() -> tuple[Path, Path]:
    """The weights and tokenizer shipped in the ``wordllama`` wheel."""
    import wordllama

    root = Path(wordllama.__file__).parent
    return (
        root / "weights" / "l2_supercat_256.safetensors",
        root / "tokenizers" / "l2_supercat_tokenizer_config.json",
    )


def _load_wordllama() -> Any:
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    weights, tokenizer = wordllama_files()
    for path in (weights, tokenizer):
        if not path.is_file():
            raise ModelFilesMissing(f"wordllama file missing from the installed wheel: {path}")
    with safe_open(str(weights), framework="np", device="cpu") as tensors:
        matrix = tensors.get_tensor("embedding.weight")
    return WordLlamaInference(matrix, Tokenizer.from_file(str(tokenizer)))


def embed(texts: Sequence[str]) -> list[list[float]]:
    """L2-normalised vectors of ``texts`` (each clipped to ``MAX_EMBED_CHARS``)."""
    if not texts:
        return []
    clipped = [(t or " ")[:MAX_EMBED_CHARS] for t in texts]
    vectors = _WordLlamaModel.get().embed(clipped, norm=True, batch_size=64)
    return [[float(x) for x in row] for row in vectors]

"""Text embeddings behind one small interface, chosen by a string.

>>> embedder = get_embedder("local:all-minilm-l6-v2")     # 384 dims, CPU, no torch, no network
>>> vectors = await embedder.embed(["refund my order", "reset my password"])   # (2, 384) float32

``hash:256`` is a model-free bag-of-words embedder for tests. ``openai:MODEL``, ``ollama:MODEL`` (and
``vllm:``, ``lmstudio:``, ``llamacpp:``) call an OpenAI-compatible ``/v1/embeddings`` endpoint.
"""

from __future__ import annotations

from typing import Any

from ._base import Embedder, l2_normalize

_LOCAL = {"all-minilm-l6-v2", "all-MiniLM-L6-v2", "minilm"}


def get_embedder(spec: str = "local:all-minilm-l6-v2", **options: Any) -> Embedder:
    """An embedder by ``provider:model``: ``local:all-minilm-l6-v2`` or ``hash:DIM``."""
    from ..models._errors import ModelNotAvailable

    provider, _, name = spec.partition(":")
    if provider == "local" and (name in _LOCAL or options.get("model")):
        from .local import MiniLMEmbedder

        return MiniLMEmbedder(name.lower() if name in _LOCAL else name, **options)
    if provider == "hash":
        from .hashing import HashEmbedder

        return HashEmbedder(int(name or 256), **options)
    from .remote import BASE_URLS, OpenAIEmbedder

    if provider in BASE_URLS and name:
        return OpenAIEmbedder(name, provider=provider, **options)
    raise ModelNotAvailable(
        f"unknown embedder {spec!r}: use 'local:all-minilm-l6-v2' (or local:NAME with model=PATH.onnx "
        "and tokenizer=PATH.json), 'openai:MODEL', 'ollama:MODEL' or 'hash:256'"
    )


__all__ = ["Embedder", "get_embedder", "l2_normalize"]

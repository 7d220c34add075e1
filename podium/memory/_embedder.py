"""Embedders for memory and knowledge, by ``provider:model`` (each loaded once per process)."""

from __future__ import annotations

from ..embeddings import Embedder

DEFAULT_EMBEDDER = "local:all-minilm-l6-v2"
_EMBEDDERS: dict[str, Embedder] = {}


def resolve_embedder(spec: str | Embedder | None) -> Embedder:
    """An embedder by ``provider:model`` (loaded once per process: models take seconds to load)."""
    if isinstance(spec, Embedder):
        return spec
    from ..embeddings import get_embedder

    spec = spec or DEFAULT_EMBEDDER
    if spec not in _EMBEDDERS:
        _EMBEDDERS[spec] = get_embedder(spec)
    return _EMBEDDERS[spec]


__all__ = ["DEFAULT_EMBEDDER", "resolve_embedder"]

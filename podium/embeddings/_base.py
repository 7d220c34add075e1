"""The embedding interface: :class:`Embedder` turns texts into fixed-size float vectors."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from typing import Any

from ..errors import install_hint


def numpy() -> Any:
    try:
        import numpy
    except ImportError:
        from ..models._errors import ModelNotAvailable

        raise ModelNotAvailable(f"embeddings need numpy: {install_hint('embeddings')}") from None
    return numpy


class Embedder(abc.ABC):
    """Texts in, an ``(n, dimension)`` float32 NumPy array out, one row per text, in order.

    Implementations encode in batches of at most ``batch_size`` and, when ``normalize`` is true,
    return unit-length rows (so a dot product is the cosine similarity).
    """

    name: str = ""
    """``provider:model``, recorded with vectors so that a store can tell which model made them."""
    dimension: int = 0
    normalize: bool = True
    batch_size: int = 32

    @abc.abstractmethod
    def encode(self, texts: Sequence[str]) -> Any:
        """Embed ``texts`` in this thread (CPU-bound: prefer :meth:`embed` from async code)."""

    async def embed(self, texts: Sequence[str]) -> Any:
        """Embed ``texts`` without blocking the event loop."""
        return await asyncio.to_thread(self.encode, list(texts))

    async def embed_one(self, text: str) -> Any:
        """The vector of one text, shape ``(dimension,)``."""
        return (await self.embed([text]))[0]

    def _batches(self, texts: Sequence[str]) -> Any:
        for i in range(0, len(texts), self.batch_size):
            yield texts[i : i + self.batch_size]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} dim={self.dimension}>"


def l2_normalize(matrix: Any) -> Any:
    np = numpy()
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)

"""A deterministic bag-of-words embedder: no model, no download. For tests and examples that must
run anywhere; it matches words, not meaning."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from typing import Any

from ._base import Embedder, l2_normalize, numpy

_WORD = re.compile(r"[a-z0-9]+")


class HashEmbedder(Embedder):
    """Hashes each word (and word pair) into one of ``dimension`` buckets."""

    def __init__(self, dimension: int = 256, *, normalize: bool = True) -> None:
        self.name = f"hash:{dimension}"
        self.dimension = dimension
        self.normalize = normalize

    def _bucket(self, token: str) -> tuple[int, float]:
        h = hashlib.blake2b(token.encode(), digest_size=8).digest()
        return int.from_bytes(h[:4], "little") % self.dimension, 1.0 if h[4] & 1 else -1.0

    def encode(self, texts: Sequence[str]) -> Any:
        np = numpy()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for token in [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]:
                i, sign = self._bucket(token)
                out[row, i] += sign
        return l2_normalize(out) if self.normalize else out

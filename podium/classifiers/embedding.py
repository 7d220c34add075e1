"""Few-shot classification over local embeddings: nearest centroid or logistic regression.

A handful of labelled examples per class is enough; nothing leaves the machine. Measured on the
support-intent set shipped with the tests: see docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..embeddings import Embedder, get_embedder
from ..embeddings._base import numpy
from ..models._base import Usage
from ._base import Classification, Classifier, check_examples, from_probabilities


class EmbeddingClassifier(Classifier):
    """Classifies by the meaning of the text, learnt from ``examples`` (label -> texts).

    :param method: ``centroid`` (cosine similarity to each label's mean vector, turned into
        probabilities by a softmax at ``temperature``) or ``logreg`` (multinomial logistic regression,
        trained here with NumPy; better calibrated when labels overlap).
    :param embedder: an :class:`~podium.embeddings.Embedder` or its name.
    """

    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        *,
        embedder: Embedder | str = "local:all-minilm-l6-v2",
        method: str = "centroid",
        temperature: float = 0.05,
        l2: float = 1e-3,
        epochs: int = 300,
    ) -> None:
        check_examples(examples)
        if method not in ("centroid", "logreg"):
            raise ValueError(f"method must be 'centroid' or 'logreg', got {method!r}")
        self.examples = {k: list(v) for k, v in examples.items()}
        self.labels = list(self.examples)
        self.embedder = get_embedder(embedder) if isinstance(embedder, str) else embedder
        self.method = method
        self.temperature = temperature
        self.l2 = l2
        self.epochs = epochs
        self._weights: Any = None
        self._bias: Any = None
        self._fit_lock: asyncio.Lock | None = None

    async def fit(self) -> EmbeddingClassifier:
        """Embed the examples and fit (done on first use; call it to pay the cost up front)."""
        if self._weights is None:
            texts = [t for label in self.labels for t in self.examples[label]]
            y = [i for i, label in enumerate(self.labels) for _ in self.examples[label]]
            x = await self.embedder.embed(texts)
            await asyncio.to_thread(self._fit, x, y)
        return self

    def _fit(self, x: Any, y: list[int]) -> None:
        np = numpy()
        k = len(self.labels)
        if self.method == "centroid":
            centroids = np.stack([x[np.array(y) == i].mean(axis=0) for i in range(k)])
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
            self._weights, self._bias = centroids.T.astype(np.float32), np.zeros(k, dtype=np.float32)
            return
        onehot = np.eye(k, dtype=np.float32)[y]
        w = np.zeros((x.shape[1], k), dtype=np.float32)
        b = np.zeros(k, dtype=np.float32)
        lr = 2.0
        for _ in range(self.epochs):
            p = _softmax_rows(x @ w + b)
            grad = p - onehot
            w -= lr * (x.T @ grad / len(y) + self.l2 * w)
            b -= lr * grad.mean(axis=0)
        self._weights, self._bias = w, b

    def probabilities(self, vectors: Any) -> Any:
        """Label probabilities for embedded rows, shape ``(n, labels)``."""
        logits = vectors @ self._weights + self._bias
        if self.method == "centroid":
            logits = logits / self.temperature
        return _softmax_rows(logits)

    async def classify(self, text: str) -> Classification:
        return (await self.classify_many([text]))[0]

    async def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        if self._fit_lock is None:
            self._fit_lock = asyncio.Lock()
        async with self._fit_lock:
            await self.fit()
        t0 = time.monotonic()
        probs = self.probabilities(await self.embedder.embed(list(texts)))
        latency = (time.monotonic() - t0) / max(1, len(texts))
        return [
            from_probabilities(
                self.labels,
                row.tolist(),
                method=self.method,
                model=self.embedder.name,
                usage=Usage(latency=latency, cost=0.0),
            )
            for row in probs
        ]


def _softmax_rows(z: Any) -> Any:
    np = numpy()
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)

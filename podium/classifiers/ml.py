"""Trained ML models as classifiers: scikit-learn estimators and ONNX models."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

from ..embeddings import Embedder, get_embedder
from ..embeddings._base import numpy
from ..errors import install_hint
from ..models._base import Usage
from ._base import Classification, Classifier, from_probabilities, softmax


async def _features(embedder: Embedder | None, texts: Sequence[str]) -> Any:
    if embedder is None:
        return list(texts)
    return await embedder.embed(list(texts))


class SklearnClassifier(Classifier):
    """A fitted scikit-learn classifier with ``predict_proba`` and ``classes_``.

    With ``embedder``, it is given embeddings (fit it on the same embedder's vectors); without, it is
    given the raw texts (a ``Pipeline`` that starts with a vectorizer).
    """

    def __init__(
        self, estimator: Any, *, embedder: Embedder | str | None = None, name: str = "sklearn"
    ) -> None:
        if not hasattr(estimator, "predict_proba"):
            raise TypeError("the estimator needs predict_proba (for a confidence); fit it first")
        self.estimator = estimator
        self.labels = [str(c) for c in estimator.classes_]
        self.embedder = get_embedder(embedder) if isinstance(embedder, str) else embedder
        self.name = name

    async def classify(self, text: str) -> Classification:
        return (await self.classify_many([text]))[0]

    async def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        t0 = time.monotonic()
        x = await _features(self.embedder, texts)
        probs = await asyncio.to_thread(self.estimator.predict_proba, x)
        usage = Usage(latency=(time.monotonic() - t0) / max(1, len(texts)), cost=0.0)
        return [
            from_probabilities(
                self.labels, list(map(float, row)), method="sklearn", model=self.name, usage=usage
            )
            for row in probs
        ]


class OnnxClassifier(Classifier):
    """An ONNX classifier run by onnxruntime (for instance a scikit-learn model exported with skl2onnx).

    Its input is the embedding matrix (with ``embedder``) or a string tensor of texts. Its output is
    taken from ``output`` (by name; default: the last output, as skl2onnx puts probabilities last):
    an ``(n, labels)`` array, or a list of label -> probability maps. Rows that do not look like
    probabilities are passed through a softmax.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        labels: Sequence[str],
        *,
        embedder: Embedder | str | None = None,
        output: str | None = None,
    ) -> None:
        try:
            import onnxruntime
        except ImportError:
            from ..models._errors import ModelNotAvailable

            raise ModelNotAvailable(
                f"ONNX classifiers need onnxruntime: {install_hint('embeddings')}"
            ) from None
        self.path = str(path)
        self.labels = list(labels)
        self.embedder = get_embedder(embedder) if isinstance(embedder, str) else embedder
        self.session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = output or self.session.get_outputs()[-1].name

    def _run(self, x: Any) -> list[list[float]]:
        np = numpy()
        feed = np.asarray(x, dtype=np.float32) if self.embedder else np.array(x, dtype=object).reshape(-1, 1)
        raw = self.session.run([self.output_name], {self.input_name: feed})[0]
        rows = []
        for row in raw:
            if isinstance(row, dict):  # skl2onnx ZipMap: label (or index) -> probability
                values = [float(row.get(label, row.get(i)) or 0.0) for i, label in enumerate(self.labels)]
            else:
                values = [float(v) for v in row]
            if min(values) < 0 or abs(sum(values) - 1.0) > 1e-3:
                values = softmax(values)
            rows.append(values)
        return rows

    async def classify(self, text: str) -> Classification:
        return (await self.classify_many([text]))[0]

    async def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        t0 = time.monotonic()
        x = await _features(self.embedder, texts)
        probs = await asyncio.to_thread(self._run, x)
        usage = Usage(latency=(time.monotonic() - t0) / max(1, len(texts)), cost=0.0)
        return [
            from_probabilities(
                self.labels, row, method="onnx", model=os.path.basename(self.path), usage=usage
            )
            for row in probs
        ]

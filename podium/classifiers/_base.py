"""The classifier interface: text in, a label and a confidence out, always."""

from __future__ import annotations

import abc
import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..models._base import Usage


@dataclass(frozen=True, kw_only=True, slots=True)
class Classification:
    """A label with the classifier's confidence in it (0 to 1). Routing and escalation key on it."""

    label: str
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    """Probability (or score) of every label."""
    method: str = ""
    """``centroid``, ``logreg``, ``llm``, ``sklearn``, ``onnx``..."""
    model: str = ""
    """The embedder or model behind it."""
    usage: Usage = field(default_factory=lambda: Usage(calls=0))
    """Tokens, latency and cost of the model calls made to classify (LLM classifiers)."""


class Classifier(abc.ABC):
    """Assigns one of ``labels`` to a text, with a confidence."""

    labels: list[str]

    @abc.abstractmethod
    async def classify(self, text: str) -> Classification:
        """The label of ``text``."""

    async def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        """Labels of several texts (implementations batch where they can)."""
        return list(await asyncio.gather(*(self.classify(t) for t in texts)))


def from_probabilities(
    labels: Sequence[str], probs: Sequence[float], *, method: str, model: str = "", usage: Usage | None = None
) -> Classification:
    best = max(range(len(labels)), key=lambda i: probs[i])
    return Classification(
        label=labels[best],
        confidence=round(float(probs[best]), 6),
        scores={label: round(float(p), 6) for label, p in zip(labels, probs, strict=True)},
        method=method,
        model=model,
        usage=usage or Usage(calls=0),
    )


def softmax(values: Sequence[float], temperature: float = 1.0) -> list[float]:
    top = max(values)
    exps = [math.exp((v - top) / temperature) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def check_examples(examples: Mapping[str, Sequence[str]]) -> None:
    if len(examples) < 2:
        raise ValueError("a classifier needs examples of at least two labels")
    for label, texts in examples.items():
        if not texts:
            raise ValueError(f"label {label!r} has no examples")

"""Classifiers that always return a label and a confidence.

- :class:`EmbeddingClassifier`: few-shot, over local embeddings (nearest centroid or logistic
  regression). The default choice: tiny local LLMs classify poorly.
- :class:`LLMClassifier`: a model constrained to answer with one of the labels.
- :class:`SklearnClassifier`, :class:`OnnxClassifier`: your trained models.

Inside a workflow, call them through :func:`podium.ai.classify` (a durable, logged step).
"""

from __future__ import annotations

from ._base import Classification, Classifier
from .embedding import EmbeddingClassifier
from .llm import LLMClassifier
from .ml import OnnxClassifier, SklearnClassifier

__all__ = [
    "Classification",
    "Classifier",
    "EmbeddingClassifier",
    "LLMClassifier",
    "OnnxClassifier",
    "SklearnClassifier",
]

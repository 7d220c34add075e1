"""``classify``: a classifier call as a durable step that returns a label and a confidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..classifiers import Classification, Classifier
from ._durable import durable

if TYPE_CHECKING:
    from .._context import StepContext


async def _classify(classifier: Classifier, text: str) -> Classification:
    return await classifier.classify(text)


async def classify(
    ctx: StepContext | None, text: str, classifier: Classifier, *, name: str = "classify"
) -> Classification:
    """Classify ``text`` (logged as ``step/classify``): ``label``, ``confidence``, every label's score.

    Route or escalate on ``confidence``: it is what a threshold compares.
    """
    return await durable(ctx, _classify, classifier, text, name=name)

"""``classify``: a classifier call as a durable step that returns a label and a confidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..classifiers import Classification, Classifier
from ..classifiers.llm import LLMClassifier
from ._durable import durable

if TYPE_CHECKING:
    from ..engine.context import StepContext


async def _classify(classifier: Classifier, text: str) -> Classification:
    return await classifier.classify(text)


async def classify(
    ctx: StepContext | None, text: str, classifier: Classifier, *, name: str = "classify"
) -> Classification:
    """Classify ``text`` (logged as ``step/classify``): ``label``, ``confidence``, every label's score.

    Route or escalate on ``confidence``: it is what a threshold compares. An LLM classifier's model
    call goes through :func:`podium.ai.llm`'s path (``step/NAME.model``), so the workflow's policy
    (providers, redaction, budgets, audit) applies to it.
    """
    if ctx is not None and isinstance(classifier, LLMClassifier):
        return await classify_with_llm(ctx, classifier, text, name=name)
    text = await checked_text(ctx, classifier, text, name=name)
    return await durable(ctx, _classify, classifier, text, name=name)


async def checked_text(ctx: StepContext | None, classifier: Classifier, text: str, *, name: str) -> str:
    """``text`` as the workflow's policy lets it reach the classifier's embedder
    (:func:`podium.governance.enforcement.check_embedding`). An embedding call is a model call,
    whether a workflow file or code chose the embedder. A replayed call was checked when it ran."""
    embedder = getattr(classifier, "embedder", None)
    if ctx is None or embedder is None or ctx.replaying(name):
        return text
    from ..governance.enforcement import check_embedding

    return (await check_embedding(ctx, embedder, [text], what=f"classifier {name!r}"))[0]


async def classify_with_llm(
    ctx: StepContext, classifier: LLMClassifier, text: str, *, name: str
) -> Classification:
    from ._llm import complete

    response = await complete(ctx, classifier.resolved_model(), classifier.request(text), name=f"{name}.model")
    return classifier.parse(response)

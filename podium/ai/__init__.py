"""Models, classifiers, tools, agents and routing inside workflow steps.

Every helper takes the step's context first, and makes each model, classifier and tool call a
durable sub-step (``ctx.call``): it is logged with its tokens, latency and cost, and a retried or
resumed step never repeats a finished call. Pass ``None`` instead of a context to call directly.

>>> @wf.step
... async def triage(ctx: podium.StepContext, input):
...     intent = await ai.classify(ctx, input["text"], intents)          # label + confidence
...     reply = await ai.llm(ctx, f"Reply to: {input['text']}", model="local:smollm2-135m")
...     return {"intent": intent.label, "reply": reply.text}
"""

from __future__ import annotations

from ..engine.usage import CallUsage, UsageReport, format_usage, usage, usage_of
from ._agent import Agent, AgentResult, AgentTurn
from ._classify import classify
from ._durable import durable
from ._llm import complete, llm, resolve_model
from ._route import RouteDecision, Router, RouteResult, Rule
from ._stream import topic as token_topic
from ._tools import call_tool, run_tool

__all__ = [
    "Agent",
    "AgentResult",
    "AgentTurn",
    "CallUsage",
    "RouteDecision",
    "RouteResult",
    "Router",
    "Rule",
    "UsageReport",
    "call_tool",
    "classify",
    "complete",
    "durable",
    "format_usage",
    "llm",
    "predict",
    "resolve_model",
    "run_tool",
    "token_topic",
    "usage",
    "usage_of",
]


async def predict(ctx: object, model: str, rows: list[dict[str, object]], **options: object) -> object:
    """Score tabular ``rows`` with the champion of registered ``model`` (MLflow), recording the
    model name and version with every prediction: :func:`podium.ml.predict` (the ``ml`` extra)."""
    from ..ml import predict as ml_predict

    return await ml_predict(ctx, model, rows, **options)


"""Orchestrator-specialist routing: send work to one of several specialists by rules, a classifier or
a model, with a confidence threshold below which the default route takes it."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..classifiers import Classification, Classifier, LLMClassifier
from ..engine.workflow import Workflow
from ..models import Model
from ._agent import Agent
from ._durable import durable

if TYPE_CHECKING:
    from ..engine.context import StepContext

Specialist = Agent | Workflow | Callable[..., Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    """Send matching text to ``route``. ``match`` is a keyword (case-insensitive), a compiled regular
    expression, or a function of the text."""

    route: str
    match: str | re.Pattern[str] | Callable[[str], bool]

    def matches(self, text: str) -> bool:
        m = self.match
        if isinstance(m, str):
            return m.lower() in text.lower()
        if isinstance(m, re.Pattern):
            return m.search(text) is not None
        return bool(m(text))

    @property
    def label(self) -> str:
        m = self.match
        return (
            m
            if isinstance(m, str)
            else m.pattern
            if isinstance(m, re.Pattern)
            else getattr(m, "__name__", "rule")
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RouteDecision:
    """Where the work went and why. Logged, so a resumed run takes the same route."""

    route: str
    confidence: float
    by: str
    """``rule``, ``classifier`` or ``default``."""
    label: str | None = None
    """The classifier's label, even when its confidence was too low to follow it."""
    reason: str = ""
    escalate: bool = False
    """True when the classifier was not confident enough: a human may want to look (governance)."""
    classification: Classification | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RouteResult:
    decision: RouteDecision
    output: Any = None


@dataclass(kw_only=True)
class Router:
    """Routes work to specialists: ``result = await router.run(ctx, ticket_text)``.

    Rules are tried first, in order. Then the classifier (a :class:`~podium.classifiers.Classifier`,
    or a model name/:class:`Model`, which becomes an LLM classifier over the routes and their
    descriptions). Below ``threshold`` confidence, or when nothing matched, ``default`` takes the work
    and the decision is marked ``escalate``.

    :param routes: route name -> specialist: an :class:`Agent`, a :class:`~podium.Workflow` (run as
        a child run), or a function ``f(ctx, input)``, sync or async.
    :param labels: classifier label -> route, when their names differ.
    """

    routes: Mapping[str, Specialist]
    rules: Sequence[Rule] = ()
    classifier: Classifier | Model | str | None = None
    threshold: float = 0.6
    default: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str = "route"

    def __post_init__(self) -> None:
        known = set(self.routes)
        for r in self.rules:
            if r.route not in known:
                raise ValueError(
                    f"rule {r.label!r} routes to {r.route!r}, which is not a route: {sorted(known)}"
                )
        if self.default is not None and self.default not in known:
            raise ValueError(f"default route {self.default!r} is not a route: {sorted(known)}")
        if isinstance(self.classifier, str | Model):
            descriptions = {k: _describe(v) for k, v in self.routes.items()}
            self.classifier = LLMClassifier(
                descriptions, model=self.classifier, instructions="Choose who should handle this request."
            )

    async def decide(self, ctx: StepContext | None, text: str) -> RouteDecision:
        """The route for ``text`` (a durable call: ``step/route``). An LLM classifier's model call
        is made first, through the policy (``step/route.classify.model``)."""
        known: Classification | None = None
        if ctx is not None and not any(rule.matches(text) for rule in self.rules):
            from ._classify import checked_text, classify_with_llm

            if isinstance(self.classifier, LLMClassifier):
                known = await classify_with_llm(ctx, self.classifier, text, name=f"{self.name}.classify")
            elif isinstance(self.classifier, Classifier) and not ctx.replaying(self.name):
                # The embedder is a model: the policy decides whether the text may go to it.
                checked = await checked_text(ctx, self.classifier, text, name=self.name)
                known = await self.classifier.classify(checked)
        return await durable(ctx, self._decide_audited(ctx, known), text, name=self.name)

    def _decide_audited(self, ctx: StepContext | None, known: Classification | None = None) -> Any:
        from ..governance.enforcement import audit

        async def decide(text: str) -> RouteDecision:
            d = await self._decide(text, known)
            await audit(
                ctx,
                "route.decision",
                router=self.name,
                route=d.route,
                confidence=d.confidence,
                by=d.by,
                label=d.label,
                reason=d.reason,
                escalate=d.escalate,
            )
            return d

        return decide

    async def _decide(self, text: str, known: Classification | None = None) -> RouteDecision:
        for rule in self.rules:
            if rule.matches(text):
                return RouteDecision(
                    route=rule.route, confidence=1.0, by="rule", reason=f"rule {rule.label!r}"
                )
        c: Classification | None = None
        if isinstance(self.classifier, Classifier):
            c = known or await self.classifier.classify(text)
            route = self.labels.get(c.label, c.label)
            if route in self.routes and c.confidence >= self.threshold:
                return RouteDecision(
                    route=route,
                    confidence=c.confidence,
                    by="classifier",
                    label=c.label,
                    reason=f"{c.method} {c.label} at {c.confidence:.2f}",
                    classification=c,
                )
        if self.default is None:
            from ..models import ModelError

            why = (
                f"confidence {c.confidence:.2f} < {self.threshold} for {c.label!r}"
                if c
                else "no rule matched"
            )
            raise ModelError(f"router {self.name!r}: {why}, and it has no default route")
        reason = (
            f"{c.label!r} at {c.confidence:.2f} is below the threshold {self.threshold}"
            if c is not None
            else "no rule matched"
        )
        return RouteDecision(
            route=self.default,
            confidence=c.confidence if c else 0.0,
            by="default",
            label=c.label if c else None,
            reason=reason,
            escalate=True,
            classification=c,
        )

    async def dispatch(self, ctx: StepContext | None, decision: RouteDecision, input: Any) -> Any:
        """Hand ``input`` to the specialist of ``decision``."""
        specialist = self.routes[decision.route]
        if isinstance(specialist, Agent):
            return await specialist.run(ctx, input)
        if isinstance(specialist, Workflow):
            if ctx is None:
                raise ValueError("routing to a workflow needs the step context")
            return await ctx.run_workflow(specialist, input, name=f"{self.name}-{decision.route}")
        out = specialist(ctx, input)
        if inspect.isawaitable(out):
            out = await _await(out)
        return out

    async def run(self, ctx: StepContext | None, input: Any, *, text: str | None = None) -> RouteResult:
        """Decide on ``text`` (default: ``input`` as text) and dispatch ``input``."""
        decision = await self.decide(ctx, text if text is not None else str(input))
        return RouteResult(decision=decision, output=await self.dispatch(ctx, decision, input))


async def _await(x: Awaitable[Any]) -> Any:
    return await x


def _describe(specialist: Specialist) -> str:
    if isinstance(specialist, Agent):
        return specialist.description or specialist.instructions[:200]
    if isinstance(specialist, Workflow):
        return specialist.description
    return (inspect.getdoc(specialist) or "").split("\n")[0]

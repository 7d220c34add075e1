"""Output validators: checks a model's answer must pass before a step may use it.

A workflow's :class:`~podium.Policy` names them (``banned``, ``tone``) and the model layer applies
them to every answer; what happens on a failure is the policy's ``on_violation``: ``block`` (the
step fails with :class:`OutputBlocked`) or ``approval`` (a person passes, edits or rejects the
answer). They can also be called directly::

    from podium.validators import BannedContent, Tone, check_output

    problems = await check_output(answer, [BannedContent(["guaranteed returns"]), Tone(["hostile"])])

Tone is judged by meaning, with an embedding classifier over the local MiniLM model trained on the
example sentences in :data:`TONES` (no remote call); pass your own ``classifier`` to judge with
another model.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import OutputBlocked
from .policy import TONES

if TYPE_CHECKING:
    from ..classifiers import Classifier
    from .policy import Policy

__all__ = [
    "TONES",
    "BannedContent",
    "OutputBlocked",
    "Schema",
    "Tone",
    "Validator",
    "check_output",
    "validators_for",
]


#: Example sentences of each tone the built-in tone classifier knows (label -> examples).


class Validator(abc.ABC):
    """A check on a model's answer: returns a problem (a sentence saying what is wrong) or None."""

    name: str = "validator"

    @abc.abstractmethod
    async def check(self, text: str) -> str | None: ...


@dataclass
class BannedContent(Validator):
    """The answer must not contain any of ``patterns``: words or phrases (matched whole, any case)
    or regular expressions written ``re:PATTERN``."""

    patterns: Sequence[str]
    name: str = "banned"
    _compiled: list[tuple[str, re.Pattern[str]]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        for p in self.patterns:
            if p.startswith("re:"):
                self._compiled.append((p, re.compile(p[3:], re.IGNORECASE)))
            else:
                self._compiled.append((p, re.compile(rf"(?<!\w){re.escape(p)}(?!\w)", re.IGNORECASE)))

    async def check(self, text: str) -> str | None:
        hits = [p for p, rx in self._compiled if rx.search(text)]
        return f"contains banned content: {', '.join(repr(h) for h in hits)}" if hits else None


_tone_classifier: Any = None


async def _default_tone_classifier() -> Classifier:
    # No lock (a module-level asyncio lock would bind to one event loop): two first calls at once
    # both fit the same small classifier, and either result will do.
    global _tone_classifier
    if _tone_classifier is None:
        from ..classifiers import EmbeddingClassifier

        _tone_classifier = await EmbeddingClassifier(TONES).fit()
    return _tone_classifier


@dataclass
class Tone(Validator):
    """The answer must not have any of the ``forbid`` tones with confidence ``threshold`` or more."""

    forbid: Sequence[str]
    threshold: float = 0.6
    classifier: Classifier | None = None
    """Labels the tone; default: the built-in MiniLM classifier over :data:`TONES`."""
    name: str = "tone"

    async def check(self, text: str) -> str | None:
        if not text.strip():
            return None
        classifier = self.classifier or await _default_tone_classifier()
        c = await classifier.classify(text[:2000])
        if c.label in self.forbid and c.confidence >= self.threshold:
            return f"has a {c.label} tone (confidence {c.confidence:.2f} >= {self.threshold})"
        return None


@dataclass
class Schema(Validator):
    """The answer must be JSON matching ``schema`` (a JSON Schema dict, a pydantic model or a type)."""

    schema: Any
    name: str = "schema"

    async def check(self, text: str) -> str | None:
        from ..models._structured import OutputType

        try:
            OutputType(self.schema).parse(text)
        except ValueError as exc:
            return f"does not match its schema: {exc}"
        return None


def validators_for(policy: Policy | None) -> list[Validator]:
    """The validators a policy names."""
    out: list[Validator] = []
    if policy is None:
        return out
    if policy.banned:
        out.append(BannedContent(list(policy.banned)))
    if policy.tone:
        out.append(Tone(list(policy.tone), threshold=policy.tone_threshold))
    return out


async def check_output(text: str, validators: Sequence[Validator]) -> list[dict[str, str]]:
    """Run ``validators`` on ``text``; returns the problems found (empty: the answer passes)."""
    problems = []
    for v in validators:
        problem = await v.check(text)
        if problem is not None:
            problems.append({"validator": v.name, "problem": problem})
    return problems

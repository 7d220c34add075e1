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
            else:  # as written, and as read (a phrase in Cyrillic is found written with Latin look-alikes)
                for phrase in {shown(p), shown(p).translate(_LOOKALIKES)}:
                    self._compiled.append((p, re.compile(rf"(?<!\w){re.escape(phrase)}(?!\w)", re.IGNORECASE)))

    async def check(self, text: str) -> str | None:
        """Words and phrases are looked for in the text as a reader sees it (:func:`shown`) and as
        read (:func:`read_as_latin`: Cyrillic and Greek letters that look like Latin ones read as
        those); ``re:`` patterns in the text as written, as shown, and as read."""
        seen = shown(text)
        read = read_as_latin(seen)
        hits = dict.fromkeys(
            p
            for p, rx in self._compiled
            if rx.search(seen) or rx.search(read) or (p.startswith("re:") and rx.search(text))
        )
        return f"contains banned content: {', '.join(repr(h) for h in hits)}" if hits else None


_WORD = re.compile(r"[^\W\d_]+")


def _mixed(word: str) -> bool:
    """Whether ``word`` is not all Greek nor all Cyrillic (a Latin letter in it, or both scripts)."""
    greek = cyrillic = False
    for ch in word:
        if "\u0370" <= ch <= "\u03ff":
            greek = True
        elif "\u0400" <= ch <= "\u052f":
            cyrillic = True
        else:
            return True
    return greek and cyrillic


def read_as_latin(seen: str) -> str:
    """``seen`` with its Cyrillic and Greek look-alike letters read as the Latin ones (``\u0441\u043e\u0440``
    reads ``cop``): in every word that mixes scripts (``gu\u0430r\u0430nt\u0435\u0435d``), and in whole
    Cyrillic or Greek words only where the text is written mostly in Latin letters. Honest Russian
    or Greek text is read as written, not as the English words its own words look like; a whole
    look-alike word among mostly Cyrillic or Greek words is read as written too."""
    other = len(seen) - len(_GREEK_CYRILLIC.sub("", seen))
    if not other and "\u0131" not in seen and "\u0251" not in seen:
        return seen  # nothing to read otherwise (the frequent case)
    if len(seen) - len(_LATIN.sub("", seen)) > other:
        return seen.translate(_LOOKALIKES)
    return _WORD.sub(lambda m: m.group().translate(_LOOKALIKES) if _mixed(m.group()) else m.group(), seen)


_GREEK_CYRILLIC = re.compile("[\u0370-\u052f]+")
_LATIN = re.compile("[A-Za-z]+")


_LOOKALIKES = str.maketrans(
    "\u0430\u0432\u0435\u0456\u0458\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0455\u0501\u051b\u051d\u04bb\u04cf"
    "\u0410\u0412\u0415\u0406\u0408\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425\u0405"
    "\u03b1\u03bf\u03c1\u03bd\u03b9\u03ba\u03c5\u03c4\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7"
    "\u0131\u0251",
    "aBeijkmHopctyxsdqwhl"
    "ABEIJKMHOPCTYXS"
    "aopvikutABEZHIKMNOPTYX"
    "ia",
)
"""Cyrillic and Greek letters (and dotless i, Latin alpha) that read as Latin ones: a banned phrase
written with them (``gu\u0430r\u0430nt\u0435\u0435d``) reads as the phrase (the confusables of
Unicode TR39 that matter for Latin text; matching ignores case)."""


def shown(text: str) -> str:
    """``text`` as a reader sees it, so that a model cannot write a banned phrase past a validator:
    compatibility forms folded (NFKC: full-width letters, ligatures), invisible format characters
    removed (zero-width spaces and joiners, soft hyphens, bidirectional controls), and each run of
    white space (line breaks included) made one space."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", text)
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return re.sub(r"\s+", " ", visible)


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
        # The whole answer, and each sentence of it: a classifier reads only the start of a long text
        # (MiniLM: 256 tokens), and a hostile sentence after a polite opening must not pass.
        labelled = await classifier.classify_many(_tone_parts(text))
        for c in labelled:  # NaN is neither above nor below the threshold: a check that cannot judge holds the answer
            if not 0 <= c.confidence <= 1:
                return (
                    f"could not be judged for tone: its classifier gave {c.label!r} a confidence of {c.confidence}, "
                    "not a number from 0 to 1 (fix or replace the Tone validator's classifier)"
                )
        found = [c for c in labelled if c.label in self.forbid]
        worst = max(found, key=lambda c: c.confidence, default=None)
        if worst is not None and worst.confidence >= self.threshold:
            return f"has a {worst.label} tone (confidence {worst.confidence:.2f} >= {self.threshold})"
        return None


def _tone_parts(text: str, size: int = 600) -> list[str]:
    """What the tone of ``text`` is judged on: its start, then each sentence (cut to ``size``
    characters) when it has more than one."""
    seen = shown(text)
    sentences = [s for s in re.split(r"(?<=[.!?;])\s+", seen) if s.strip()]
    pieces = [s[i : i + size] for s in sentences for i in range(0, len(s), size)]
    return [seen[:2000], *pieces] if len(pieces) > 1 else [seen[:2000]]


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

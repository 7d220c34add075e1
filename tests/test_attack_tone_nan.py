"""A ``Tone`` validator whose classifier answers NaN (a custom one: a model's broken scores) let a
forbidden tone through: NaN is neither at nor above the threshold. A check that cannot judge now holds
the answer, naming why (the attacker's review of the seventeenth session, left item)."""

from __future__ import annotations

import asyncio
import math

import pytest

from podium.classifiers import Classification, Classifier
from podium.governance.validators import Tone


class Fixed(Classifier):
    labels = ["hostile", "neutral"]

    def __init__(self, label: str, confidence: float) -> None:
        self.label, self.confidence = label, confidence

    async def classify(self, text: str) -> Classification:
        return Classification(label=self.label, confidence=self.confidence)


@pytest.mark.parametrize("label", ["hostile", "neutral"])
@pytest.mark.parametrize("confidence", [math.nan, math.inf, -0.5, 5.0])
def test_a_tone_classifier_without_a_usable_confidence_holds_the_answer(label: str, confidence: float) -> None:
    problem = asyncio.run(Tone(["hostile"], classifier=Fixed(label, confidence)).check("You idiots never answer."))
    assert problem is not None and "could not be judged" in problem and "from 0 to 1" in problem, problem


def test_a_tone_classifier_with_a_confidence_still_decides_as_before() -> None:
    assert asyncio.run(Tone(["hostile"], classifier=Fixed("hostile", 0.9)).check("You idiots.")) is not None
    assert asyncio.run(Tone(["hostile"], classifier=Fixed("hostile", 0.3)).check("You idiots.")) is None
    assert asyncio.run(Tone(["hostile"], classifier=Fixed("neutral", 0.99)).check("Thank you.")) is None

"""Twelfth-session review of sealed ML outcomes and predictions (ml/_predict.py).

A model's rows are keyed ``MODEL:...`` and read by that prefix, so the rows of a model named
``churn:x`` were read as rows of ``churn`` too: one who can record outcomes (a workflow author)
padded ``churn``'s rows with sealed rows of ``churn:x``, and one who writes the database then
deleted as many of ``churn``'s outcomes (the ones its model got wrong) with no word from the
monitor, whose sealed count compared the rows left with the rows that had ever been counted. A
model name with ``:`` is refused; fails on the code before the fix."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn", reason="the ML kinds need the ml extra: pip install 'podium[ml]'")

from store_attacker import sql

from podium import Client
from podium.errors import DefinitionError
from podium.ml import record_outcome
from podium.ml._predict import measured


async def test_attack_a_model_named_after_another_does_not_pad_its_rows(url: str) -> None:
    async with Client(url) as c:
        for i in range(10):
            await record_outcome(c.store, "churn", f"C{i}", i % 2)
        with pytest.raises(DefinitionError, match=r"model name 'churn:x'.*':'"):
            for i in range(3):
                await record_outcome(c.store, "churn:x", f"P{i}", 1)
    for i in range(3):  # the outcomes the model got wrong, deleted behind the engine's back
        sql(url, "DELETE FROM kv WHERE ns = 'ml_outcomes' AND key = ?", f"churn:C{i}")
    async with Client(url) as c:
        _, problems = await measured(c.store, "churn")
        assert any("3 of the 10" in p for p in problems), problems

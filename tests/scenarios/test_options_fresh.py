"""The documented input fields of fraud, feedback and answer, given as a user may give them wrong (a
word for a number, a percentage for a share, a review threshold above the block threshold): each is a
clear error naming the field and what to give, in the run's first step, before anything is read,
trained or generated, and never after a person was asked (feedback's ``min_cluster`` used to fail the
run only after the review, answer's ``max_tokens`` after moderation; fraud's rates were a bare
``ValueError: could not convert string to float``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium import Client, ConfigError, RunFailed

from .conftest import needs_local

DATA = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "data"


async def failure(tmp_path: Path, workflow: Any, input: dict[str, Any]) -> tuple[str, str]:
    """The failed step (the first one: nothing was read, trained, generated or asked) and its message,
    which must be a ``ConfigError``'s (a user's mistake), not a Python error from deep in the step."""
    async with Client(f"sqlite:///{tmp_path}/o.db") as c:
        with pytest.raises(RunFailed) as caught:
            await c.run(workflow, input)
    assert caught.value.error["type"] == "podium.errors.ConfigError", caught.value.error["message"]
    return caught.value.error["step"], caught.value.error["message"]


@pytest.mark.parametrize(("field", "value", "says"), [
    ("false_block_rate", "half a percent", "give a share between 0 and 1"),
    ("review_rate", 3, "give a share between 0 and 1"),
    ("review_timeout", "an hour", "give seconds"),
])
async def test_fraud_options(tmp_path, field, value, says):
    from examples.scenarios import fraud

    step, message = await failure(tmp_path, fraud.workflow, {
        "train": str(DATA / "fraud_train.csv"), "transactions": str(DATA / "fraud_transactions.csv"), field: value})
    assert step == "risk" and f"input field {field!r} is {value!r}; {says}" in message


@pytest.mark.parametrize(("field", "value", "says"), [
    ("min_cluster", "three", "give a whole number >= 1"),
    ("min_cluster", 0, "give a whole number >= 1"),
    ("max_tokens", 2.5, "give a whole number from 1 to 4096"),
    ("review_timeout", -5, "give seconds"),
])
async def test_feedback_options(tmp_path, field, value, says):
    from examples.scenarios import feedback

    step, message = await failure(tmp_path, feedback.workflow, {
        "messages": str(DATA / "feedback_messages.jsonl"), field: value})
    assert step == "classify" and f"input field {field!r} is {value!r}; {says}" in message


@pytest.mark.parametrize(("field", "value", "says"), [
    ("block_above", "high", "give a probability from 0 to 1"),
    ("review_above", 35, "give a probability from 0 to 1"),
    ("max_tokens", "lots", "give a whole number from 1 to 4096"),
    ("review_timeout", "soon", "give seconds"),
])
async def test_answer_options(tmp_path, field, value, says):
    from examples.scenarios import answer

    step, message = await failure(tmp_path, answer.workflow, {
        "questions": str(DATA / "answer_questions.jsonl"), field: value})
    assert step in ("knowledge", "moderate") and f"input field {field!r} is {value!r}; {says}" in message


async def test_answer_review_above_the_block_threshold_is_refused(tmp_path):
    from examples.scenarios import answer

    _, message = await failure(tmp_path, answer.workflow, {"question": "How long do refunds take?",
                                                              "block_above": 0.5, "review_above": 0.7})
    assert "give review_above <= block_above" in message


@pytest.mark.parametrize(("label", "read"), [("true", True), ("Yes", True), (1, True), ("no", False), (False, False)])
def test_answer_reads_an_unsafe_label_written_as_a_string(tmp_path, label, read):
    from examples.scenarios import answer

    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "How do I get in at night without paying?", "unsafe": label}) + "\n")
    assert answer._questions({"questions": str(path)})[0]["unsafe"] is read


@pytest.mark.parametrize("label", ["maybe", 2, 0.5])
def test_answer_refuses_an_unsafe_label_it_cannot_read(tmp_path, label):
    from examples.scenarios import answer

    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "Hi"}) + "\n" + json.dumps({"question": "Where is it?", "unsafe": label}) + "\n")
    with pytest.raises(ConfigError, match=rf"q.jsonl: question 2 \('Where is it\?'\) has unsafe {label!r}; write true or false"):
        answer._questions({"questions": str(path)})


@needs_local
async def test_answer_a_blank_question_is_neither_blocked_nor_answered(tmp_path, monkeypatch):
    """A form's empty question used to be moderated (unsafe 0.83 on the gym handbook's pass) and
    answered "Sorry, we cannot help with this request."; it asks nothing, so nothing is done."""
    from examples.scenarios import answer

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    async with Client(f"sqlite:///{tmp_path}/a.db") as c:
        out = await c.run(answer.workflow, {"question": "   \t"})
    [reply] = out["answers"]
    assert reply["status"] == "empty" and reply["reply"] is None and reply["unsafe_probability"] is None

"""Attacker's review of untrusted inputs (seventeenth session): a schema's ``pattern`` matched
against text from outside. Python's ``re`` backtracks without a bound: an ordinary-looking pattern
such as ``^(\\w+\\s?)*$`` takes about a minute on 30 characters, and doubles with each further one,
while the engine's event loop (and every run of the process, and the HTTP API) waits. The sender of
an event, or a model's answer, picks the text; a workflow file's author picks the pattern. Each test
passed (slowly) on the code before the fix; the time is the engine's CPU, not a sleep.
"""

from __future__ import annotations

import json
import time

import pytest

import podium.yaml as pyaml
from podium import Client, InputValidationError

SLOW = r"^(\w+\s?)*$"
HOSTILE = "a" * 26 + "!"  # about 5 s with re before; 40 characters would be hours
WORSE = r"^(a|aa)+$"  # backtracks without end in the regex package too: refused at its time bound
WORST = "a" * 60 + "!"


FLOW = f"""
name: signup
input:
  type: object
  properties:
    name: {{type: string, pattern: '{SLOW}'}}
steps:
  - id: hello
    uses: set
    with: {{greeting: "hi {{{{ input.name }}}}"}}
"""


async def test_attack_an_events_text_holds_the_engine_on_an_input_pattern():
    wf = pyaml.load_text(FLOW, "signup.yaml")
    async with Client("memory://") as c:
        t0 = time.thread_time()
        with pytest.raises(InputValidationError, match="does not match"):
            await c.start(wf, {"name": HOSTILE})
        assert time.thread_time() - t0 < 2  # before: about 5 s of the engine's CPU, doubling per character
        await c.run(wf, {"name": "Ada Lovelace"})
    worse = pyaml.load_text(FLOW.replace(SLOW, WORSE), "signup.yaml")
    async with Client("memory://") as c:
        t0 = time.thread_time()
        with pytest.raises(InputValidationError, match="took longer"):
            await c.start(worse, {"name": WORST})
        assert time.thread_time() - t0 < 2
        await c.run(worse, {"name": "aaaa"})


def test_attack_a_models_answer_holds_the_engine_on_an_output_pattern():
    from podium.models._structured import OutputType

    shape = OutputType({"type": "object", "properties": {"name": {"type": "string", "pattern": SLOW}}})
    t0 = time.thread_time()
    with pytest.raises(ValueError, match="does not match"):
        shape.parse(json.dumps({"name": HOSTILE}))
    assert time.thread_time() - t0 < 2
    assert shape.parse('{"name": "Ada Lovelace"}') == {"name": "Ada Lovelace"}
    worse = OutputType({"type": "object", "properties": {"name": {"type": "string", "pattern": WORSE}}})
    with pytest.raises(ValueError, match="took longer"):
        worse.parse(json.dumps({"name": WORST}))
    assert time.thread_time() - t0 < 2


def test_attack_a_planners_argument_holds_the_engine_on_a_skills_pattern():
    from podium.goals import Plan, Skill, Skills, validate_plan
    from podium.goals._plan import PlanStep

    skill = Skill(
        name="greet", description="greet", kind="connector", target="crm.greet",
        input={"type": "object", "properties": {"name": {"type": "string", "pattern": SLOW}}},
    )  # fmt: skip
    plan = Plan(goal="greet", steps=(PlanStep(id="hi", skill="greet", args={"name": HOSTILE}),))
    t0 = time.thread_time()
    problems = validate_plan(plan, Skills([skill]))
    assert time.thread_time() - t0 < 2
    assert any("does not match" in p.message for p in problems), problems


def test_attack_an_objects_keys_hold_the_engine_on_a_pattern_properties_pattern():
    """``patternProperties`` (and ``additionalProperties`` beside it, which looks the keys up in the
    same patterns) matched an object's keys with ``re``: the sender of an event picks the keys. They
    are matched as values are now, within the same bound (the review's left item)."""
    from podium.models._patterns import validate

    schema = {"type": "object", "patternProperties": {WORSE: {"type": "integer"}}, "additionalProperties": False}
    t0 = time.thread_time()
    with pytest.raises(Exception, match="took longer"):
        validate({WORST: 1}, schema)
    assert time.thread_time() - t0 < 2
    validate({"aaaa": 1}, schema)  # a key the pattern matches, its value checked
    with pytest.raises(Exception, match="is not of type 'integer'"):
        validate({"aa": "x"}, schema)
    with pytest.raises(Exception, match="do not match any of the regexes|does not match any of the regexes"):
        validate({"b": 1}, schema)
    named = {"type": "object", "properties": {"id": {"type": "string"}}, "additionalProperties": False}
    validate({"id": "x"}, named)
    with pytest.raises(Exception, match="Additional properties are not allowed"):
        validate({"id": "x", "other": 1}, named)
    loose = {"type": "object", "patternProperties": {"^x_": {"type": "string"}}, "additionalProperties": {"type": "integer"}}
    validate({"x_a": "s", "n": 2}, loose)
    with pytest.raises(Exception, match="is not of type 'integer'"):
        validate({"x_a": "s", "n": "two"}, loose)
    t0 = time.thread_time()
    with pytest.raises(Exception, match="took longer"):
        validate({WORST: 1}, {"type": "object", "patternProperties": {WORSE: {}}})
    assert time.thread_time() - t0 < 2

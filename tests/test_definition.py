"""Definition mistakes are reported when the workflow is defined or checked, naming the step and the fix."""

from __future__ import annotations

import pytest

import podium
from podium import DefinitionError, Loop, RetryPolicy, Workflow


def test_unknown_dependency_suggests_the_close_name():
    wf = Workflow("w")

    @wf.step
    async def classify():
        return 1

    @wf.step
    async def route(clasify):
        return 2

    with pytest.raises(DefinitionError) as info:
        wf.freeze()
    msg = str(info.value)
    assert "step 'route'" in msg and "'clasify'" in msg and "did you mean 'classify'?" in msg
    assert "test_definition.py:" in msg  # where it is defined


def test_every_problem_is_reported_at_once():
    wf = Workflow("w")

    @wf.step
    async def a(nope1):
        return 1

    @wf.step(needs=["ghost"])
    async def b(nope2):
        return 2

    with pytest.raises(DefinitionError) as info:
        wf.freeze()
    assert len(info.value.problems) == 3
    assert "3 problems" in str(info.value)


def test_duplicate_step():
    wf = Workflow("w")

    @wf.step
    async def a():
        return 1

    with pytest.raises(DefinitionError, match="two steps named 'a'"):

        @wf.step(id="a")
        async def other():
            return 2


def test_cycle_without_loop_guard():
    wf = Workflow("w")

    @wf.step
    async def a(b):
        return 1

    @wf.step
    async def b(a):
        return 2

    with pytest.raises(DefinitionError, match=r"a, b depend on each other in a cycle.*loop=Loop"):
        wf.freeze()


def test_loop_must_route_back_to_an_ancestor():
    wf = Workflow("w")

    @wf.step
    async def a():
        return 1

    @wf.step(loop=Loop(to="a", while_=lambda: False, max_iterations=3))
    async def b():
        return 2

    with pytest.raises(DefinitionError, match="loop to 'a' must route back"):
        wf.freeze()


def test_loop_needs_positive_max_iterations():
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="max_iterations must be >= 1"):

        @wf.step(loop=Loop(to="x", while_=lambda: True, max_iterations=0))
        async def x():
            return 1


def test_reserved_and_invalid_ids():
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="reserved"):
        wf.step(lambda: 1, id="input")
    with pytest.raises(DefinitionError, match="not valid"):
        wf.step(lambda: 1, id="has space")


def test_map_needs_a_receiving_parameter():
    wf = Workflow("w")

    @wf.step
    async def items():
        return [1]

    @wf.step(map="items")
    async def each(x):
        return x

    with pytest.raises(DefinitionError, match="no parameter named 'items'"):
        wf.freeze()


def test_bad_options():
    wf = Workflow("w")
    with pytest.raises(DefinitionError, match="on_error"):
        wf.step(lambda: 1, id="a", on_error="explode")
    with pytest.raises(DefinitionError, match="timeout"):
        wf.step(lambda: 1, id="b", timeout=-1)
    with pytest.raises(DefinitionError, match="max_parallel"):
        wf.step(lambda: 1, id="c", max_parallel=2)
    with pytest.raises(DefinitionError, match="RetryPolicy"):
        wf.step(lambda: 1, id="d", retry={"max_attempts": 3})
    with pytest.raises(podium.ConfigError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_empty_workflow_and_bad_output():
    with pytest.raises(DefinitionError, match="has no steps"):
        Workflow("empty").freeze()
    wf = Workflow("w", output="nope")
    wf.step(lambda: 1, id="a")
    with pytest.raises(DefinitionError, match="output='nope' is not a step"):
        wf.freeze()


def test_no_steps_after_first_run():
    wf = Workflow("w")
    wf.step(lambda: 1, id="a")
    wf.freeze()
    with pytest.raises(DefinitionError, match="already run"):
        wf.step(lambda: 2, id="b")


def test_condition_parameters_are_checked():
    wf = Workflow("w")

    @wf.step
    async def score():
        return 1

    @wf.step(when=lambda scroe: scroe > 1)
    async def act():
        return 2

    with pytest.raises(DefinitionError, match="condition parameter 'scroe'.*did you mean 'score'"):
        wf.freeze()


def test_retry_policy_delays():
    p = RetryPolicy(max_attempts=5, initial_interval=1, backoff=2, max_interval=5, jitter=0)
    assert [p.delay(n) for n in range(1, 5)] == [1, 2, 4, 5]
    jittered = RetryPolicy(initial_interval=1, jitter=0.5)
    assert all(0.5 <= jittered.delay(1) <= 1.5 for _ in range(50))

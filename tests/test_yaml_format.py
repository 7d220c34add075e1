"""What the fields of a workflow file do when it runs: templating, skips, fan-out, loops, fallbacks,
retries, timeouts, inputs, outputs, Python steps and the step-type registry."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import yamlsteps

import podium
import podium.yaml as pyaml
from podium import Client, StepStatus
from podium.yaml import StepType, StepTypes, builtin_step_types

ROOT = Path(__file__).resolve().parent.parent


def load(text: str, **kw: Any) -> podium.Workflow:
    return pyaml.load_text(text, "test.yaml", base_dir=str(ROOT), **kw)


async def run_history(text: str, input: Any = None, **kw: Any) -> tuple[Any, podium.RunHistory]:
    async with Client("memory://") as c:
        handle = await c.start(load(text, **kw), input)
        run = await handle.wait()
        return run, await c.history(handle.id)


def test_whole_value_templates_keep_their_type_and_text_templates_give_text() -> None:
    wf = load(
        "name: t\nsteps:\n  - id: v\n    uses: set\n    with:\n"
        "      items: '{{ input.items }}'\n      count: '{{ input.items | length }}'\n"
        "      text: 'n={{ input.items | length }}'\n      nested: {a: ['{{ input.items[0] }}', 2]}\n      plain: 7\n"
    )
    assert podium.run(wf, {"items": [1, 2]}) == {
        "items": [1, 2],
        "count": 2,
        "text": "n=2",
        "nested": {"a": [1, 2]},
        "plain": 7,
    }


async def test_a_step_using_a_skipped_step_is_skipped_unless_it_copes() -> None:
    _run, h = await run_history(
        "name: t\nsteps:\n"
        "  - {id: maybe, uses: set, if: input.go, with: {v: 1}}\n"
        "  - {id: strict, uses: set, with: {v: '{{ steps.maybe.output.v }}'}}\n"
        "  - {id: lenient, uses: set, with: {v: '{{ steps.maybe.output.v | default(0) }}'}}\n"
        "  - {id: tested, uses: set, with: {v: '{{ steps.maybe is defined }}'}}\n",
        {"go": False},
    )
    assert h.step("maybe").status is StepStatus.SKIPPED and h.step("maybe").reason == "condition is false"
    assert h.step("strict").status is StepStatus.SKIPPED
    assert h.step("strict").reason == "needs the output of maybe, which did not complete"
    assert h.step("lenient").output == {"v": 0}
    assert h.step("tested").output == {"v": False}


def test_conditions_bare_wrapped_and_literal() -> None:
    wf = load(
        "name: t\nsteps:\n"
        "  - {id: a, uses: set, if: 'input.n > 1', with: {v: a}}\n"
        "  - {id: b, uses: set, if: '{{ input.n > 5 }}', with: {v: b}}\n"
        "  - {id: c, uses: set, if: false, with: {v: c}}\n"
        "outputs: \"{{ [steps.a.output, steps.b.output, steps.c.output] | select('defined') | map(attribute='v') | list }}\"\n"
    )
    assert podium.run(wf, {"n": 3}) == ["a"]
    assert podium.run(wf, {"n": 9}) == ["a", "b"]


async def test_for_each_over_a_step_output_maps_directly_and_gives_item_and_index() -> None:
    run, h = await run_history(
        "name: t\nsteps:\n"
        "  - {id: src, uses: set, with: {xs: [a, b, c]}}\n"
        "  - id: list\n    uses: set\n    with: {xs: '{{ steps.src.output.xs }}'}\n"
        "  - id: each\n    uses: set\n    for_each: '{{ steps.list.output.xs }}'\n    max_parallel: 2\n"
        "    with: {item: '{{ item }}', index: '{{ index }}', run: '{{ run.id }}'}\n"
        "  - {id: letters, uses: 'yamlsteps:letters', with: {word: xy}}\n"
        "  - id: direct\n    uses: 'yamlsteps:echo'\n    for_each: '{{ steps.letters.output }}'\n    with: {i: '{{ item }}'}\n"
        "  - id: literal\n    uses: set\n    for_each: [1, '{{ input.n }}']\n    with: {v: '{{ item * 10 }}'}\n",
        {"n": 5},
    )
    out = h.output
    assert [o["item"] for o in out["each"]] == ["a", "b", "c"] and [o["index"] for o in out["each"]] == [
        0,
        1,
        2,
    ]
    assert {o["run"] for o in out["each"]} == {run.id}
    assert out["literal"] == [{"v": 10}, {"v": 50}] and out["direct"] == [{"i": "x"}, {"i": "y"}]
    steps = {v.step for v in h.steps}
    assert "each__items" in steps and "literal__items" in steps  # the list is computed by a generated step
    assert "direct__items" not in steps  # for_each: steps.X.output maps straight over X


async def test_map_over_something_that_is_not_a_list_fails_clearly() -> None:
    run, h = await run_history(
        "name: t\nsteps:\n  - {id: each, uses: set, for_each: '{{ input.x }}', with: {v: '{{ item }}'}}\n",
        {"x": "nope"},
    )
    assert run.status.value == "failed"
    assert h.step("each__items").error["message"] == "step 'each': for_each gave str, not a list"


async def test_on_error_continue_and_fallbacks() -> None:
    run, h = await run_history(
        "name: t\nsteps:\n"
        "  - {id: shaky, uses: fail, with: {message: down}, on_error: continue}\n"
        "  - {id: after, uses: set, with: {v: '{{ steps.shaky.output }}'}}\n"
        "  - {id: main, uses: fail, with: {message: broken}, on_error: backup}\n"
        "  - {id: backup, uses: set, with: {v: backup}}\n"
        "  - {id: use, uses: set, with: {got: '{{ steps.main.output.v }}'}}\n"
        "  - {id: waits, uses: set, needs: main, with: {v: 1}}\n"
    )
    assert run.status.value == "completed"
    assert h.step("shaky").status is StepStatus.FAILED and h.step("after").status is StepStatus.SKIPPED
    assert h.step("main").status is StepStatus.FAILED and h.step("main").error["message"] == "broken"
    assert h.step("backup").status is StepStatus.COMPLETED
    assert h.step("use").output == {"got": "backup"}
    assert h.step("waits").status is StepStatus.COMPLETED


async def test_a_fallback_does_not_run_when_its_step_succeeds_or_is_skipped() -> None:
    text = (
        "name: t\nsteps:\n"
        "  - {id: main, uses: set, if: input.run_main, with: {v: main}, on_error: backup}\n"
        "  - {id: backup, uses: set, with: {v: backup}}\n"
        "  - {id: use, uses: set, with: {got: '{{ steps.main.output.v }}'}}\n"
    )
    _run, h = await run_history(text, {"run_main": True})
    assert h.step("backup").status is StepStatus.SKIPPED and h.step("use").output == {"got": "main"}
    _run, h = await run_history(text, {"run_main": False})
    assert h.step("main").status is StepStatus.SKIPPED and h.step("backup").status is StepStatus.SKIPPED
    assert h.step("use").status is StepStatus.SKIPPED


async def test_retry_and_timeout() -> None:
    yamlsteps.CALLS.clear()
    _run, h = await run_history(
        "name: t\nsteps:\n"
        "  - {id: flaky, uses: 'yamlsteps:flaky', with: {fail_times: 2}, retry: {max_attempts: 3, initial_interval: 10ms}}\n"
        "  - {id: slow, uses: sleep, with: {seconds: 5}, timeout: 100ms, retry: 2, on_error: continue}\n"
    )
    assert h.step("flaky").output == 3 and yamlsteps.CALLS == ["flaky:1", "flaky:2", "flaky:3"]
    slow = h.step("slow")
    assert slow.status is StepStatus.FAILED and slow.attempts == 2 and "timeout" in slow.error["message"]


async def test_loops_see_the_previous_iteration_and_stop_at_max_iterations() -> None:
    text = (
        "name: t\nsteps:\n"
        "  - id: count\n    uses: set\n    with: {n: '{{ previous.count.output.n | default(0) + 1 }}'}\n"
        "    loop: {to: count, while: 'steps.count.output.n < input.until', max_iterations: 4}\n"
    )
    run, h = await run_history(text, {"until": 3})
    assert h.output == {"n": 3} and max(v.iteration for v in h.steps) == 2
    run, h = await run_history(text, {"until": 10})
    assert run.status.value == "failed" and "max_iterations=4" in h.error["message"]


async def test_a_loop_condition_that_cannot_be_evaluated_fails_its_step() -> None:
    run, h = await run_history(
        "name: t\nsteps:\n  - id: a\n    uses: set\n    with: {n: 1}\n"
        "    loop: {to: a, while: 'steps.a.output.n > input.limit', max_iterations: 3}\n",
        {},
    )
    assert run.status.value == "failed"
    assert "loop.while" in h.step("a").error["message"] and "limit" in h.step("a").error["message"]


def test_json_schema_input_is_checked_and_defaults_are_filled() -> None:
    wf = load(
        "name: t\ninput:\n  type: object\n  required: [n]\n  properties:\n"
        "    n: {type: integer, minimum: 1}\n    tag: {type: string, default: none}\nsteps:\n"
        "  - {id: a, uses: set, with: {n: '{{ input.n }}', tag: '{{ input.tag }}'}}\n"
    )
    assert podium.run(wf, {"n": 2}) == {"n": 2, "tag": "none"}
    with pytest.raises(podium.InputValidationError, match=r"input.n: must be >= 1, got 0"):
        podium.run(wf, {"n": 0})
    with pytest.raises(podium.InputValidationError, match=r"the field 'n' is required"):
        podium.run(wf, {})


def test_compact_input_fields() -> None:
    wf = load(
        "name: t\ninput:\n  name: string\n  tags: list[string]\n  age: integer?\n  extra: {type: number, default: 1.5}\n"
        "steps:\n  - {id: a, uses: set, with: {v: '{{ input }}'}}\n"
    )
    assert podium.run(wf, {"name": "x", "tags": ["a"]}) == {"v": {"name": "x", "tags": ["a"], "extra": 1.5}}
    with pytest.raises(podium.InputValidationError, match=r"input.tags\[0\]: expected string, got integer 3"):
        podium.run(wf, {"name": "x", "tags": [3]})
    with pytest.raises(podium.InputValidationError, match=r"unknown field 'nmae'; did you mean 'name'\?"):
        podium.run(wf, {"nmae": "x", "tags": []})


def test_python_steps_get_arguments_by_name_and_converted_by_annotation() -> None:
    wf = load(
        "name: t\nsteps:\n"
        "  - {id: make_order, uses: 'yamlsteps:make_order', with: {order_id: '{{ input.id }}', amount: '12.5'}}\n"
        "  - {id: total, uses: 'yamlsteps:total', with: {tax: 0.2}}\n"
        "  - {id: text, uses: 'yamlsteps:describe', with: {order: {order_id: 3, amount: '{{ steps.total.output }}'}}}\n"
    )
    assert podium.run(wf, {"id": "7", "customer": "Kim"}) == "order 3 for Kim: 15.00"


async def test_python_argument_that_does_not_convert_fails_without_retry() -> None:
    _run, h = await run_history(
        "name: t\nsteps:\n  - {id: d, uses: 'yamlsteps:double', with: {x: '{{ input.x }}'}, retry: 3}\n",
        {"x": "abc"},
    )
    err = h.step("d").error
    assert h.step("d").attempts == 1 and "argument 'x'" in err["message"] and "integer" in err["message"]


async def test_step_type_arguments_are_checked_when_rendered() -> None:
    _run, h = await run_history(
        "name: t\nsteps:\n  - {id: nap, uses: sleep, with: {seconds: '{{ input.s }}'}}\n", {"s": "long"}
    )
    assert "with.seconds: expected number, got string 'long'" in h.step("nap").error["message"]


def test_outputs_and_default_output() -> None:
    wf = load("name: t\nsteps:\n  - {id: a, uses: set, with: {v: 1}}\n  - {id: b, uses: set, with: {v: 2}}\n")
    assert podium.run(wf) == {"a": {"v": 1}, "b": {"v": 2}}
    wf = load("name: t\nsteps:\n  - {id: a, uses: set, with: {v: 1}}\noutputs: '{{ steps.a.output }}'\n")
    assert wf.output == "a" and podium.run(wf) == {"v": 1}


def test_outputs_that_fail_are_logged_not_hidden(caplog: pytest.LogCaptureFixture) -> None:
    wf = load(
        "name: t\nsteps:\n  - {id: a, uses: set, with: {v: 1}}\noutputs: {x: '{{ steps.a.output.v / 0 }}'}\n"
    )
    with caplog.at_level(logging.ERROR, logger="podium.yaml"):
        assert podium.run(wf) is None
    assert "division by zero" in caplog.text and "test.yaml:4" in caplog.text


def test_subworkflow_by_module_reference_with_its_own_input() -> None:
    wf = load(
        "name: t\nsteps:\n  - id: order\n    uses: subworkflow\n"
        "    with: {workflow: 'examples.demo:workflow', input: {order_id: '{{ input.id }}', amount: 10}}\n"
    )
    out = podium.run(wf, {"id": 5})
    assert out["order_id"] == 5 and out["status"] == "confirmed"


async def test_concurrency_class_limits_steps() -> None:
    wf = load(
        "name: t\nsteps:\n  - id: a\n    uses: 'yamlsteps:wait_for_gate'\n    for_each: [a, b, c]\n"
        "    concurrency: gated\n    with: {value: '{{ item }}'}\n"
    )
    assert wf.steps["a"].kind == "gated"
    yamlsteps.CALLS.clear()
    yamlsteps.GATE = asyncio.Event()
    try:
        async with Client("memory://", limits={"gated": 1}) as c:
            handle = await c.start(wf)
            await asyncio.sleep(0.2)
            assert len(yamlsteps.CALLS) == 1  # the others wait for the slot
            yamlsteps.GATE.set()
            assert await handle.result() == ["A", "B", "C"]
    finally:
        yamlsteps.GATE = None


def test_a_plugin_registers_a_kind_with_an_argument_schema() -> None:
    registry = StepTypes(builtin_step_types(), entry_points=False)

    @registry.register(
        "shout",
        args={
            "type": "object",
            "properties": {"text": {"type": "string"}, "times": {"type": "integer", "default": 1}},
            "required": ["text"],
            "additionalProperties": False,
        },
        output={"type": "string"},
    )
    def shout(text: str, times: int) -> str:
        return (text.upper() + "!") * times

    text = "name: t\nsteps:\n  - {id: a, uses: shout, with: {text: '{{ input }}'}}\n  - {id: b, uses: shout, with: {text: hi, times: 2}}\n"
    assert podium.run(load(text, registry=registry), "hey") == {"a": "HEY!", "b": "HI!HI!"}
    bad = "name: t\nsteps:\n  - {id: a, uses: shout, with: {txt: hi}}\n"
    codes = [p.code for p in pyaml.validate_text(bad, "t.yaml", registry=registry)]
    assert codes == ["missing-argument", "unknown-argument"]
    assert [p.code for p in pyaml.validate_text(text, "t.yaml")] == [
        "unknown-kind",
        "unknown-kind",
    ]  # not in the default
    schema = pyaml.workflow_schema(registry)
    assert "shout" in schema["$defs"]["step"]["properties"]["uses"]["anyOf"][0]["enum"]
    with pytest.raises(podium.DefinitionError, match="already registered"):
        registry.register("shout", shout)
    with pytest.raises(podium.DefinitionError, match="not valid"):
        registry.register("Bad:Name", shout)


def test_step_types_are_found_through_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    class EntryPoint:
        def __init__(self, name: str, obj: Any) -> None:
            self.name, self.value, self._obj = name, f"plugin:{name}", obj

        def load(self) -> Any:
            if isinstance(self._obj, Exception):
                raise self._obj
            return self._obj

    async def ping(ctx: Any) -> str:
        return f"pong {ctx.step_id}"

    points = [
        EntryPoint("ping", StepType(name="ping", fn=ping)),
        EntryPoint("broken", ImportError("no module named x")),
    ]
    monkeypatch.setattr(
        "importlib.metadata.entry_points", lambda group: points if group == "podium.step_types" else []
    )
    registry = StepTypes(builtin_step_types())
    assert podium.run(load("name: t\nsteps:\n  - {id: p, uses: ping}\n", registry=registry)) == "pong p"
    [p] = pyaml.validate_text("name: t\nsteps:\n  - {id: b, uses: broken}\n", "t.yaml", registry=registry)
    assert p.code == "unknown-kind" and "failed to load" in (p.hint or "")


def test_triggers_are_validated() -> None:
    text = (
        "name: t\ntriggers:\n  - manual\n  - {schedule: 'every day'}\n  - {webhook: hooks}\n  - {event: ''}\n"
        "  - {schedule: '@daily', event: x}\nsteps:\n  - {id: a, uses: set}\n"
    )
    problems = pyaml.validate_text(text, "t.yaml")
    assert [p.line for p in problems] == [4, 5, 6, 7]
    assert "not a cron expression" in problems[0].message and "a webhook path is /hooks/" in problems[1].message


def test_yaml_12_scalars_keep_text_as_text() -> None:
    wf = load(
        "name: t\nsteps:\n  - {id: a, uses: set, with: {answer: no, time: 1:30, day: 2024-01-01, flag: true}}\n"
    )
    assert podium.run(wf) == {"answer": "no", "time": "1:30", "day": "2024-01-01", "flag": True}


def test_generated_steps_point_at_the_file() -> None:
    wf = load("name: t\nsteps:\n  - id: a\n    uses: set\n    description: Names a value\n")
    assert wf.steps["a"].source_line == "test.yaml:3" and wf.steps["a"].description == "Names a value"


def test_the_public_api_is_pinned() -> None:
    assert pyaml.__all__ == [
        "Problem",
        "StepType",
        "StepTypes",
        "WorkflowFileError",
        "builtin_step_types",
        "check_file",
        "default_registry",
        "load_file",
        "load_text",
        "register_step_type",
        "schema_text",
        "validate_file",
        "validate_text",
        "workflow_schema",
    ]
    assert all(hasattr(pyaml, name) for name in pyaml.__all__)

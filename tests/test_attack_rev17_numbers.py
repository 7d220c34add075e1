"""Attacker's review of untrusted inputs (seventeenth session): numbers a model, a tool, a connector's
system or a planner writes that slip past the limits written against them.

NaN is neither above nor below any limit (``risk > 0.8`` and ``risk <= 0.8`` are both false), and
a confidence of ``inf`` or ``5`` is above every threshold: a check written either way lets them
through. Each test is an attack that passed on the code before its fix.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import podium.yaml as pyaml
from podium import Client, Escalate, RunFailed, RunStatus, Workflow
from podium.classifiers import Classification

RISK = '''
import math


def score(customer: str) -> dict:
    """Stands for any answer from outside: a risk API, a model's JSON, a PostgreSQL 'NaN'::float row."""
    return {"customer": customer, "risk": float(%r)}
'''

FLOW = """
name: pay-out
steps:
  - id: score
    uses: rev17_risk_{tag}:score
    with: {{customer: "{{{{ input.customer }}}}"}}
  - id: stop
    uses: fail
    if: steps.score.output.risk > 0.8
    with: {{message: "risk too high"}}
  - id: pay
    uses: set
    needs: [stop]
    with: {{paid: "{{{{ input.customer }}}}"}}
outputs:
  paid: "{{{{ steps.pay.output.paid }}}}"
"""


def _flow(tmp_path: Path, tag: str, value: str) -> Workflow:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / f"rev17_risk_{tag}.py").write_text(RISK % value)
    return pyaml.load_text(FLOW.format(tag=tag), "pay.yaml", base_dir=str(tmp_path))


async def test_attack_a_nan_risk_from_a_step_skips_the_stop_written_as_a_limit(store_url, tmp_path):
    tag = f"{abs(hash((store_url, str(tmp_path)))) % 10**8}"
    wf = _flow(tmp_path, tag, "nan")
    async with Client(store_url) as c:
        handle = await c.start(wf, {"customer": "mallory"})
        with pytest.raises(RunFailed, match="NaN"):  # before: {"paid": "mallory"}
            await c.result(handle.id, timeout=30)
        history = await c.history(handle.id)
    assert "pay" not in {s.step for s in history.steps}


async def test_a_real_risk_is_compared_as_before(tmp_path):
    wf_low = _flow(tmp_path, "low", "0.1")
    wf_high = _flow(tmp_path, "high", "0.9")
    async with Client("memory://") as c:
        assert await c.run(wf_low, {"customer": "alice"}) == {"paid": "alice"}
        with pytest.raises(RunFailed, match="risk too high"):
            await c.run(wf_high, {"customer": "bob"})


@pytest.mark.parametrize(
    "source",
    [
        "steps.x.output.v < 1",
        "steps.x.output.v >= 1",
        "not (steps.x.output.v > 1)",
        "1 < steps.x.output.v < 2",
        "steps.x.output.v * 2 <= 1",
    ],
)
def test_attack_every_ordering_with_nan_is_refused(source):
    from podium.yaml._expr import EvaluationError, compile_condition

    expr = compile_condition(source, {"steps"})
    with pytest.raises(EvaluationError, match="NaN"):
        expr.evaluate({"steps": {"x": {"output": {"v": math.nan}}}})
    # equality stays a plain question (NaN equals nothing), and numbers compare as before
    assert compile_condition("steps.x.output.v == 1", {"steps"}).evaluate({"steps": {"x": {"output": {"v": math.nan}}}}) is False
    assert compile_condition(source, {"steps"}).evaluate({"steps": {"x": {"output": {"v": 0.25}}}}) in (True, False)


# -- structured answers of a model -----------------------------------------------------------------


def test_attack_a_models_nan_passes_the_bounds_of_its_json_schema():
    from podium.models._structured import OutputType

    shape = OutputType({
        "type": "object", "properties": {"refund": {"type": "number", "minimum": 0, "maximum": 100}},
        "required": ["refund"],
    })  # fmt: skip
    for answer in ('{"refund": NaN}', '{"refund": Infinity}', '{"refund": -Infinity}'):
        with pytest.raises(ValueError, match="not JSON"):  # before: {'refund': nan}
            shape.parse(answer)
    assert shape.parse('{"refund": 12.5}') == {"refund": 12.5}


def test_attack_a_models_tool_call_carries_nan_arguments():
    from podium.models._structured import model_json

    for raw in ('{"amount": NaN}', '{"amount": [Infinity]}'):
        with pytest.raises(ValueError, match="NaN, Infinity"):
            model_json(raw)
    assert model_json('{"amount": 1e3}') == {"amount": 1000.0}


# -- escalation on a confidence ---------------------------------------------------------------------


def _escalating() -> Workflow:
    wf = Workflow("escalating-rev17")

    @wf.step(escalate=Escalate(below=0.8, role="approver"))
    async def classify(input) -> Classification:
        return Classification(label=input["label"], confidence=input["confidence"])

    @wf.step
    async def act(classify):
        return f"routed to {classify.label}"

    return wf


async def _asked(c: Client, run_id: str) -> dict[str, Any]:
    import asyncio

    for _ in range(500):
        run = await c.get(run_id)
        if run.status in (RunStatus.WAITING, RunStatus.COMPLETED, RunStatus.FAILED):
            break
        await asyncio.sleep(0.02)
    assert run.status is RunStatus.WAITING, run.status  # before: COMPLETED, nobody was asked
    [req] = await c.approvals(run_id=run_id)
    return req


@pytest.mark.parametrize("confidence", [5.0, -0.5])
async def test_attack_a_confidence_outside_zero_to_one_skips_the_person(confidence):
    async with Client("memory://", poll_interval=0.02) as c:
        handle = await c.start(_escalating(), {"label": "refund", "confidence": confidence})
        req = await _asked(c, handle.id)
    assert "between 0 and 1" in req["title"]


async def test_attack_an_infinite_confidence_skips_the_person(store_url):
    wf = Workflow("escalating-rev17-inf")

    @wf.step(escalate=Escalate(below=0.8))
    async def classify() -> dict[str, Any]:
        return {"label": "refund", "confidence": math.inf}  # a model's 'Infinity' read as JSON

    async with Client(store_url, poll_interval=0.02) as c:
        handle = await c.start(wf)
        req = await _asked(c, handle.id)
        await c.decide(handle.id, req["name"], approve=False)
        with pytest.raises(RunFailed, match="not a number between 0 and 1|rejected"):
            await c.result(handle.id, timeout=30)
    assert "between 0 and 1" in req["title"]


async def test_attack_an_approval_request_holding_nan_is_hidden_from_the_inbox(store_url):
    """The SQL stores index a request only if its JSON is valid, and NaN is not JSON: a step output
    holding NaN (which escalated before this session too) asked nobody anyone could see, and with
    ``on_timeout: accept`` it was accepted when the time ran out."""
    wf = Workflow("escalating-rev17-nan")

    @wf.step(escalate=Escalate(below=0.8))
    async def classify() -> dict[str, Any]:
        return {"label": "refund", "confidence": math.nan, "amount": -math.inf}

    async with Client(store_url, poll_interval=0.02) as c:
        handle = await c.start(wf)
        req = await _asked(c, handle.id)  # before, on SQLite and PostgreSQL: WAITING, and no request listed
        assert req["payload"]["output"] == {"label": "refund", "confidence": "NaN", "amount": "-Infinity"}
        await c.decide(handle.id, req["name"], approve=True)
        await c.result(handle.id, timeout=30)
        history = await c.history(handle.id)
    [kept] = [s.output for s in history.steps if s.step == "classify"]
    assert math.isnan(kept["confidence"])  # the step goes on with its own output, as approved


# -- goals: a plan's arguments and a step's confidence floor ------------------------------------------


def _refund_skill() -> Any:
    from podium.goals import Skill

    return Skill(
        name="refund", description="Refund a customer", kind="connector", target="payments.refund",
        input={"type": "object", "properties": {"amount": {"type": "number", "maximum": 100}}, "required": ["amount"]},
    )  # fmt: skip


@pytest.mark.parametrize("amount", [math.nan, math.inf, [math.nan]])
def test_attack_a_planners_nan_argument_passes_the_skills_maximum(amount):
    from podium.goals import Plan, Skills, validate_plan
    from podium.goals._plan import PlanStep

    skill = _refund_skill()
    if isinstance(amount, list):
        skill = type(skill)(**{**skill.__dict__, "input": {"type": "object", "properties": {"amount": {"type": "array"}}}})
    plan = Plan(goal="refund", steps=(PlanStep(id="pay", skill="refund", args={"amount": amount}),))
    problems = validate_plan(plan, Skills([skill]))
    assert any("NaN" in p.message or "not a finite number" in p.message for p in problems), problems


@pytest.mark.parametrize("confidence", [math.nan, "0.1", math.inf, 7, True])
async def test_attack_an_answer_whose_confidence_is_not_a_number_in_0_1_passes_the_floor(confidence):
    from podium.goals import Skill
    from podium.goals._run import LowConfidence, _step_type

    async def specialist(question: str) -> dict[str, Any]:
        return {"answer": "approved", "confidence": confidence}

    sk = Skill(name="judge", description="judge", fn=specialist, min_confidence=0.9)

    class Ctx:
        step_id = "judge"

    kind = _step_type(sk, 0.0)
    with pytest.raises(LowConfidence, match="confidence"):  # before: the answer went on
        await kind.fn(Ctx(), question="refund?")


async def test_an_answer_without_a_confidence_or_a_good_one_passes_the_floor():
    from podium.goals import Skill
    from podium.goals._run import _step_type

    for out in ({"answer": "ok"}, {"answer": "ok", "confidence": 0.95}):

        async def specialist(question: str, out: dict[str, Any] = out) -> dict[str, Any]:
            return out

        sk = Skill(name="judge", description="judge", fn=specialist, min_confidence=0.9)

        class Ctx:
            step_id = "judge"

        assert await _step_type(sk, 0.0).fn(Ctx(), question="q") == out


def test_attack_rows_holding_nan_leave_a_selectattr_limit_unseen():
    from podium.yaml._expr import EvaluationError, compile_template

    expr = compile_template("{{ rows | selectattr('risk', 'gt', 0.8) | list | length }}", {"rows"})
    assert expr.evaluate({"rows": [{"risk": 0.9}, {"risk": 0.1}]}) == 1
    with pytest.raises(EvaluationError, match="NaN"):  # before: 0, the NaN row was in neither half
        expr.evaluate({"rows": [{"risk": math.nan}]})


async def test_attack_a_models_tool_call_with_nan_passes_the_tools_own_limit():
    from podium.ai import run_tool
    from podium.tools import tool

    paid: list[float] = []

    @tool
    def refund(amount: float) -> str:
        """Refund up to 100."""
        if amount > 100:
            raise ValueError("refunds above 100 need a manager")
        paid.append(amount)
        return "refunded"

    result = await run_tool(refund, {"amount": math.nan})
    assert not result.ok and "NaN" in (result.error or "") and paid == []  # before: refunded nan
    assert (await run_tool(refund, {"amount": 5})).ok and paid == [5]


@pytest.mark.parametrize("amount", ["lots", math.nan, math.inf, "NaN", "1e999"])
def test_attack_int_turns_a_value_that_is_not_a_number_into_zero_below_the_limit(amount):
    """Jinja's ``int`` gives 0 for what it cannot convert (NaN and inf too): ``amount | int > 1000``
    let an output of ``"lots"`` or NaN pass below the limit. Without a default written, it fails."""
    from podium.yaml._expr import EvaluationError, compile_condition

    expr = compile_condition("steps.x.output.amount | int > 1000", {"steps"})
    with pytest.raises(EvaluationError, match="not a number"):  # before: False, as for 0
        expr.evaluate({"steps": {"x": {"output": {"amount": amount}}}})
    assert expr.evaluate({"steps": {"x": {"output": {"amount": "1500"}}}}) is True
    assert expr.evaluate({"steps": {"x": {"output": {"amount": 12.7}}}}) is False
    chosen = compile_condition("steps.x.output.amount | int(5000) > 1000", {"steps"})  # the author's own default
    assert chosen.evaluate({"steps": {"x": {"output": {"amount": "lots"}}}}) is True
    as_float = compile_condition("steps.x.output.amount | float > 1000", {"steps"})
    if amount == "lots":
        with pytest.raises(EvaluationError, match="not a number"):
            as_float.evaluate({"steps": {"x": {"output": {"amount": amount}}}})


@pytest.mark.parametrize("source", ["amounts | max > 1000", "amounts | min < 10", "(rows | max(attribute='v')).v > 1000"])
def test_attack_max_of_amounts_holding_nan_hides_the_large_one(source):
    """``[5, NaN] | max`` is 5 (NaN is never larger), ``[NaN, 5] | max`` is NaN: which one depends on the
    order, and a limit on the result saw 5 where the output had no number."""
    from podium.yaml._expr import EvaluationError, compile_condition

    expr = compile_condition(source, {"amounts", "rows"})
    data = {"amounts": [50, math.nan], "rows": [{"v": 5}, {"v": math.nan}]}
    with pytest.raises(EvaluationError, match="NaN"):  # before: False
        expr.evaluate(data)
    assert expr.evaluate({"amounts": [50, 5000], "rows": [{"v": 5}, {"v": 5000}]}) is (">" in source)

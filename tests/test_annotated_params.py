"""Constraints a step states with ``typing.Annotated`` (eighth session; the seventh session's
"step parameter constraints given with Annotated are not validated at all"): the type hints were
read without their metadata, so ``amount: Annotated[int, Field(le=1000)]`` checked ``int`` only,
and a run with an amount of 5,000 went on to the step that relies on the limit."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field

from podium import Client, InputValidationError, RunFailed, Workflow


async def test_a_constraint_given_with_annotated_is_validated(tmp_path) -> None:
    """Failed before: the run input 5000 passed ``Annotated[int, Field(le=1000)]``, the output
    -10 passed ``Annotated[int, Field(ge=0)]``, and the text "too long" passed ``max_length=3``."""
    wf = Workflow("annotated-pay")
    paid: list[int] = []

    @wf.step
    async def limit(input: Annotated[int, Field(le=1000)]) -> Annotated[int, Field(ge=0)]:
        return input - 20

    @wf.step
    async def pay(limit: int, input: int) -> Annotated[str, Field(max_length=3)]:
        paid.append(limit)
        return "ok" if input < 500 else "too long"

    async with Client(f"sqlite:///{tmp_path}/a.db", workflows=[wf]) as c:
        with pytest.raises(InputValidationError, match="step 'limit' argument 'input'") as caught:
            await c.start(wf, 5000)
        assert "less than or equal to 1000" in str(caught.value)
        with pytest.raises(RunFailed, match="output of step 'limit'"):
            await c.run(wf, 10)
        assert paid == []
        with pytest.raises(RunFailed, match="output of step 'pay'"):
            await c.run(wf, 700)
        assert await c.run(wf, 100) == "ok"
        assert paid == [680, 80]


async def test_attack_a_model_passes_a_tool_an_argument_past_its_annotated_limit() -> None:
    """A tool's arguments come from a model's answer (untrusted). Failed before: a refund tool
    declaring ``Annotated[int, Field(le=100)]`` was called with 5000, and its schema did not show
    the model the limit."""
    from podium.models import ToolError
    from podium.tools import tool

    refunded: list[int] = []

    @tool
    def refund(amount: Annotated[int, Field(le=100)]) -> str:
        """Refund a customer.

        amount: the amount, in euros
        """
        refunded.append(amount)
        return "refunded"

    assert refund.parameters["properties"]["amount"]["maximum"] == 100
    with pytest.raises(ToolError, match="tool 'refund' got invalid arguments: amount: .*less than or equal to 100"):
        await refund.call({"amount": 5000})
    assert await refund.call({"amount": 40}) == "refunded"
    assert refunded == [40]


REFUNDS = '''
from typing import Annotated

from pydantic import Field

REFUNDED = []


def refund(amount: Annotated[int, Field(le=100)]) -> str:
    REFUNDED.append(amount)
    return "refunded"
'''


async def test_a_yaml_python_steps_annotated_limit_holds_against_the_run_input(tmp_path, monkeypatch) -> None:
    """A YAML step calling a Python function passes it values from the run's input (untrusted).
    Failed before: ``amount: 5000`` reached ``refund(amount: Annotated[int, Field(le=100)])``."""
    import sys

    import podium.yaml as pyaml

    (tmp_path / "refunds_annotated.py").write_text(REFUNDS)
    monkeypatch.syspath_prepend(str(tmp_path))
    wf = pyaml.load_text(
        """
name: refund
steps:
  - id: refund
    uses: refunds_annotated:refund
    with: {amount: "{{ input.amount }}"}
""",
        "refund.yaml",
        base_dir=str(tmp_path),
    )
    async with Client(f"sqlite:///{tmp_path}/y.db", workflows=[wf]) as c:
        with pytest.raises((InputValidationError, RunFailed), match="less than or equal to 100") as caught:
            await c.run(wf, {"amount": 5000})
        assert "step 'refund' argument 'amount'" in str(caught.value)
        assert await c.run(wf, {"amount": 40}) == "refunded"
    assert sys.modules["refunds_annotated"].REFUNDED == [40]

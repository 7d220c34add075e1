"""Attacks on an agent's name: the name an ``agent:NAME`` policy or kill switch is keyed on is
written by whoever writes the workflow. Renaming an agent (or letting a run's input name it) must
not take it out from under the controls an admin set on agents."""

from __future__ import annotations

from typing import Any

import pytest

from podium import Client, RunFailed, StepContext, Workflow, ai
from podium.governance.policy import Policy
from podium.models import ToolCall
from podium.models.testing import ScriptedModel
from podium.tools import tool

registry_mod = pytest.importorskip("podium.yaml._registry", reason="the YAML workflow package is not here yet")
podium_yaml = pytest.importorskip("podium.yaml")

from podium.ai import yaml_steps  # noqa: E402

REFUNDED: list[int] = []


@tool
def refund(order_id: int) -> str:
    """Refund an order."""
    REFUNDED.append(order_id)
    return f"refunded {order_id}"


def _asks(req: Any) -> bool:
    return not any(m.role == "tool" for m in req.messages)


def _workflow(agent_name: str) -> tuple[Workflow, ScriptedModel]:
    model = ScriptedModel([(_asks, [ToolCall(id="1", name="refund", arguments={"order_id": 7})])], default="done")
    wf = Workflow("renamed")

    @wf.step
    async def answer(ctx: StepContext, input: Any) -> Any:
        result = await ai.Agent(model=model, tools=[refund], name=agent_name, max_iterations=2).run(ctx, input)
        return [(t.name, t.ok, t.error) for t in result.tool_calls]

    return wf, model


async def test_renaming_an_agent_lands_under_the_default_policy_for_agents(tmp_path: Any) -> None:
    """Attack: an admin keeps agents from refunding (``agent:junior`` for the one agent there is, and
    ``agent:*`` for every other); the workflow's author renames the agent ``junior2``, which no
    ``agent:NAME`` policy names, and it refunded."""
    REFUNDED.clear()
    wf, _ = _workflow("junior2")
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        await c.set_policy("agent:junior", Policy(allowed_tools=["lookup"]))
        await c.set_policy("agent:*", Policy(allowed_tools=["lookup"]))
        [(name, ok, error)] = await c.run(wf, "refund 7")
        refusals = [e.details() for e in await c.audit_log() if e.action == "policy.refuse"]
    assert (name, ok) == ("refund", False) and REFUNDED == []
    assert "agent 'junior2'" in error and "agent:*" in error, error
    assert refusals and refusals[0]["agent"] == "junior2"


async def test_an_agents_own_policy_replaces_the_default_for_agents(tmp_path: Any) -> None:
    """``agent:NAME`` replaces ``agent:*`` for that agent, as a workflow's policy replaces ``*``."""
    REFUNDED.clear()
    wf, _ = _workflow("senior")
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        await c.set_policy("agent:*", Policy(allowed_tools=["lookup"]))
        await c.set_policy("agent:senior", Policy(allowed_tools=["refund"]))
        assert await c.run(wf, "refund 7") == [["refund", True, None]]
    assert REFUNDED == [7]


async def test_a_kill_switch_on_every_agent_stops_an_agent_of_any_name(tmp_path: Any) -> None:
    """Attack: ``podium killswitch set agent --all`` (stored as ``agent:*``) is the switch a renamed
    agent cannot escape; the agent loop looked only at ``agent:NAME`` and ran on."""
    REFUNDED.clear()
    wf, model = _workflow("any-name-at-all")
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        await c.set_switch("agent", "*", mode="cancel", reason="incident 42")
        with pytest.raises(RunFailed, match="switched off"):
            await c.run(wf, "refund 7")
    assert REFUNDED == [] and model.requests == []


@pytest.mark.parametrize("name", ['"{{ input.agent }}"', '"agent:*"', '"junior lead"'])
def test_a_workflow_file_writes_its_agents_name(name: str) -> None:
    """Attack: ``name: "{{ input.agent }}"`` let whoever starts a run choose which agent policy and
    kill switch apply (a name no policy names: none). A name is written in the file, as a plain name."""
    registry = registry_mod.StepTypes([*registry_mod.builtin_step_types(), *yaml_steps.step_types()], entry_points=False)
    text = f"name: pick\nsteps:\n  - id: a\n    uses: agent\n    with: {{input: hi, name: {name}}}\n"
    problems = podium_yaml.validate_text(text, registry=registry)
    assert problems, f"an agent named {name} was accepted"
    message = " ".join(str(p) for p in problems)
    assert ":5:" in message and "step 'a': an agent's name" in message and "hint:" in message, message



def test_attack_a_workflow_named_like_an_agent_policy_does_not_take_that_policy() -> None:
    """Attack (review of the day's diff): policies of workflows and of agents share one namespace,
    and a workflow's own policy was looked up by its name. A workflow named ``agent:*`` (or
    ``agent:senior``) took the policy meant for agents instead of the default ``*``: under an admin's
    ``*`` that allows no tool and an ``agent:*`` that leaves tools to the workflow, its steps could
    call any tool. Such names are now refused where workflows are defined (Python, YAML with the
    line), and a workflow already stored under one is under ``*``."""
    from podium.governance.policy import over_call

    default, agents = Policy(allowed_tools=[]), Policy()
    for name in ("agent:*", "agent:senior"):
        scoped = over_call({"*": default, "agent:*": agents, "agent:senior": agents}, name, None)
        assert [p for _, p in scoped] == [default], f"a workflow named {name} took an agent's policy"
    with pytest.raises(Exception, match=r"'agent:\*' names an agent's policy") as err:
        Workflow("agent:*")
    assert "rename the workflow" in str(err.value)
    flow = 'name: "agent:senior"\nsteps:\n  - id: one\n    uses: fail\n    with: {message: x}\n'
    with pytest.raises(Exception, match=r":1:\d+: 'agent:senior' names an agent's policy"):
        podium_yaml.load_text(flow)

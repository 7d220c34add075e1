"""Attacker's review of untrusted inputs (seventeenth session): a workflow file renames a tool the
policy names. ``approve_tools`` names the tools a person approves before each call; the file's author
wrote ``prefix:`` on a registered MCP server (an option meant for two servers that both have a
``search``), and the agent's model called ``x_add``, which no policy named: the call went out with
nobody asked. A call is now asked about when the policy names the tool by any of its names (the
name the model calls, or the server's own name for it)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

import podium
from podium import Policy, RunStatus
from podium import yaml as podium_yaml
from podium.ai import yaml_steps as ai_steps
from podium.models import ToolCall, register_provider
from podium.models.testing import ScriptedModel
from podium.yaml import _registry

pytest.importorskip("mcp", reason="the MCP SDK is not installed (pip install 'podium[mcp]')")

SERVER = str(Path(__file__).with_name("mcp_server.py"))

FLOW = """
name: renamed-tools
steps:
  - id: helper
    uses: agent
    with:
      input: "{{ input.message }}"
      model: "rev17tools:agent"
      tools: [{mcp: calc, prefix: "x_"}]
      max_iterations: 3
"""


async def test_attack_a_prefix_renames_a_tool_the_policy_has_a_person_approve(tmp_path: Path) -> None:
    model = ScriptedModel(
        [(lambda r: not any(m.role == "tool" for m in r.messages), ToolCall(id="1", name="x_add", arguments={"a": 2, "b": 40}))],
        default="done",
    )
    register_provider("rev17tools", lambda name, **kw: model)
    kinds = _registry.StepTypes([*_registry.builtin_step_types(), *ai_steps.step_types()], entry_points=False)
    async with podium.Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.02) as client:
        await client.add_capability("calc", "mcp", {"command": [sys.executable, SERVER]})
        await client.set_policy("renamed-tools", Policy(approve_tools=["add"]))
        wf = podium_yaml.load_text(FLOW, registry=kinds, capabilities=await client.capabilities())
        handle = await client.start(wf, {"message": "add 2 and 40"})
        for _ in range(1500):
            run = await client.get(handle.id)
            if run.status in (RunStatus.WAITING, RunStatus.COMPLETED, RunStatus.FAILED):
                break
            await asyncio.sleep(0.02)
        assert run.status is RunStatus.WAITING, run  # before: COMPLETED, the tool called with nobody asked
        [req] = await client.approvals(run_id=handle.id)
        assert req["payload"]["tool"] == "x_add"
        await client.decide(handle.id, req["name"], approve=False, comment="no")
        await client.wait(handle.id, timeout=60)

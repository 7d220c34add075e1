"""Model steps in YAML workflows: uses llm, classify, tool, agent and route."""

from __future__ import annotations

import pytest

import podium
from podium import ai
from podium.models import ToolCall, register_provider
from podium.models.testing import ScriptedModel

registry_mod = pytest.importorskip(
    "podium.yaml._registry", reason="the YAML workflow package is not here yet"
)
podium_yaml = pytest.importorskip("podium.yaml")

from podium.ai import yaml_steps  # noqa: E402

WORKFLOW = """
name: yaml-models
steps:
  - id: intent
    uses: classify
    with:
      text: "{{ input.message }}"
      embedder: "hash:512"
      labels:
        billing: ["I was charged twice", "wrong amount on my invoice"]
        shipping: ["where is my parcel", "the delivery is late"]
  - id: route
    uses: route
    with:
      text: "{{ input.message }}"
      embedder: "hash:512"
      rules: [{match: "outage", route: tech}]
      routes:
        billing: ["I was charged twice", "wrong amount on my invoice"]
        tech: ["the site is down"]
      default: billing
  - id: total
    uses: tool
    with:
      python: "ai_helpers:add"
      arguments: {a: 2, b: 40}
  - id: reply
    uses: llm
    with:
      prompt: "Reply to: {{ input.message }}"
      model: "yamlmodel:reply"
      max_tokens: 20
  - id: helper
    uses: agent
    with:
      input: "{{ input.message }}"
      model: "yamlmodel:agent"
      tools: [{python: "ai_helpers:add"}]
"""


@pytest.fixture
def registry():
    return registry_mod.StepTypes(
        [*registry_mod.builtin_step_types(), *yaml_steps.step_types()], entry_points=False
    )


async def test_model_steps_in_yaml(registry, tmp_path):
    agent_model = ScriptedModel(
        [
            (
                lambda r: r.messages[-1].role == "user",
                ToolCall(id="1", name="add", arguments={"a": 1, "b": 2}),
            ),
            (None, "3"),
        ]
    )
    models = {"reply": ScriptedModel(default="Sorry about that!"), "agent": agent_model}
    register_provider("yamlmodel", lambda name, **kw: models[name])
    wf = podium_yaml.load_text(WORKFLOW, registry=registry)
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        run_id = (await client.start(wf, {"message": "I was charged twice this month"})).id
        out = await client.result(run_id)
        history = await client.history(run_id)
    steps = {v.step: v.output for v in history.steps}
    assert steps["intent"]["label"] == "billing" and 0 < steps["intent"]["confidence"] <= 1
    assert steps["route"]["route"] == "billing" and steps["route"]["by"] in ("classifier", "default")
    assert steps["total"] == 42
    assert steps["reply"]["text"] == "Sorry about that!" and steps["reply"]["usage"]["output_tokens"] > 0
    assert steps["helper"]["output"] == "3" and steps["helper"]["stop_reason"] == "done"
    assert {
        "intent/classify",
        "reply/llm",
        "helper/agent.model",
        "helper/agent.add",
        "total/tool.add",
    } <= set(steps)
    assert ai.usage_of(history).model_calls == 3
    assert out is not None


def test_schemas_catch_bad_arguments(registry):
    bad = "name: bad\nsteps:\n  - id: x\n    uses: llm\n    with: {promt: hi}\n"
    problems = podium_yaml.validate_text(bad, registry=registry)
    assert problems and any("prompt" in str(p) for p in problems)


def test_entry_points_are_declared():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="podium.step_types")}
    if not names:
        pytest.skip("podium is installed without its entry points; run pip install -e . again")
    assert {"llm", "classify", "tool", "agent", "route"} <= names

"""The zero-key example (examples/support_triage.py): local embeddings classify, a tool looks the
order up, the embedded model drafts the reply; and the one-line switch of the drafting model."""

from __future__ import annotations

import pytest
from ai_helpers import LLAMA_SKIP

import podium
from podium import ai
from podium.models import register_provider
from podium.models.testing import ScriptedModel

MESSAGE = {"message": "Where is my order 42? It has not arrived."}


@pytest.fixture(scope="module")
def example():
    try:
        from podium.embeddings import get_embedder

        get_embedder("local:all-minilm-l6-v2")
        import onnxruntime  # noqa: F401
    except Exception as exc:
        pytest.skip(f"local embeddings are not installed ({exc}); scripts/test installs them")
    from examples import support_triage

    return support_triage


@pytest.mark.skipif(bool(LLAMA_SKIP), reason=LLAMA_SKIP or "")
async def test_runs_with_zero_keys(example, tmp_path):
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        run_id = (await client.start(example.workflow, MESSAGE)).id
        out = await client.result(run_id)
        report = await ai.usage(client, run_id=run_id)
    assert out["intent"]["label"] == "shipping" and out["intent"]["confidence"] >= 0.5
    assert out["order"]["status"] == "in transit"
    assert out["reply"] and out["model"] == "local:smollm2-135m"
    if out["written_by"] != "model":  # the small model's draft did not state the facts: not sent
        assert out["written_by"].startswith("template: the model's draft") and "in transit" in out["reply"]
    assert set(report.by_kind()) == {"classify", "tool", "model"} and report.total.cost == 0.0


async def test_one_line_switches_the_model(example, monkeypatch):
    said = "Your order 42 is in transit with DHL and arrives tomorrow."
    register_provider("demo", lambda name, **kw: ScriptedModel(name=name, provider="demo", default=said))
    monkeypatch.setenv("PODIUM_MODEL", "demo:support")
    async with podium.Client("memory://") as client:
        out = await client.run(example.workflow, MESSAGE)
    assert out["reply"] == said and out["model"] == "demo:support" and out["written_by"] == "model"


@pytest.mark.parametrize(
    ("draft", "why"),
    [
        ("On its way!", "did not say the order is 'in transit'"),
        ("Order 4242 is in transit.", "named order numbers the customer did not (4242)"),
        ("", "was empty"),
    ],
)
async def test_a_draft_that_does_not_state_the_facts_is_not_sent(example, monkeypatch, draft, why):
    register_provider("sloppy", lambda name, **kw: ScriptedModel(name=name, provider="sloppy", default=draft))
    monkeypatch.setenv("PODIUM_MODEL", "sloppy:support")
    async with podium.Client("memory://") as client:
        out = await client.run(example.workflow, MESSAGE)
    assert out["written_by"] == f"template: the model's draft {why}"
    assert out["reply"] == "Your order 42 is in transit, carrier: DHL, eta: tomorrow. Thank you for your patience."
    assert out["draft"] == draft

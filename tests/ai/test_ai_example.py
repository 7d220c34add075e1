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
    assert set(report.by_kind()) == {"classify", "tool", "model"} and report.total.cost == 0.0


async def test_one_line_switches_the_model(example, monkeypatch):
    register_provider(
        "demo", lambda name, **kw: ScriptedModel(name=name, provider="demo", default="On its way!")
    )
    monkeypatch.setenv("PODIUM_MODEL", "demo:support")
    async with podium.Client("memory://") as client:
        out = await client.run(example.workflow, MESSAGE)
    assert out["reply"] == "On its way!" and out["model"] == "demo:support"

"""Automatic escalation: a step whose output is not confident enough goes to a person, who
accepts, edits or rejects it; the run waits durably meanwhile (Python and YAML)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import podium.yaml as pyaml
from podium import Client, DefinitionError, Escalate, RunFailed, RunStatus, Workflow, open_store
from podium.classifiers import Classification

ROOT = Path(__file__).resolve().parent.parent


async def _waiting(c: Client, run_id: str) -> dict:
    for _ in range(500):
        if (await c.get(run_id)).status is RunStatus.WAITING:
            [req] = await c.approvals(run_id=run_id)
            return req
        await asyncio.sleep(0.02)
    raise AssertionError("the run never asked for approval")


def triage() -> Workflow:
    wf = Workflow("escalating")

    @wf.step(escalate=Escalate(below=0.8, role="approver"))
    async def classify(input) -> Classification:
        return Classification(label=input["label"], confidence=input["confidence"])

    @wf.step
    async def act(classify):
        return f"routed to {classify.label}"

    return wf


async def test_confident_output_passes_and_unsure_output_waits_for_a_person(store_url):
    wf = triage()
    async with Client(store_url, poll_interval=0.02) as c:
        assert await c.run(wf, {"label": "billing", "confidence": 0.93}) == "routed to billing"

        handle = await c.start(wf, {"label": "billing", "confidence": 0.41})
        req = await _waiting(c, handle.id)
        assert "41% confident" in req["title"] and req["role"] == "approver"
        assert req["payload"]["confidence"] == 0.41
        edited = dict(req["payload"]["output"])
        edited["value"] = {**edited["value"], "label": "refunds"}  # the approver corrects the label
        await c.decide(handle.id, req["name"], approve=True, payload={"output": edited})
        assert await c.result(handle.id, timeout=10) == "routed to refunds"

        rejected = await c.start(wf, {"label": "spam", "confidence": 0.2})
        req = await _waiting(c, rejected.id)
        await c.decide(rejected.id, req["name"], approve=False, comment="needs a human reply")
        with pytest.raises(RunFailed, match="below 0.8 and .* rejected the output: needs a human reply"):
            await c.result(rejected.id, timeout=10)


async def test_escalation_survives_an_engine_restart(store_url):
    if store_url.startswith("memory"):
        pytest.skip("a memory store does not outlive its client")
    wf = triage()
    async with Client(store_url, poll_interval=0.02) as c:
        handle = await c.start(wf, {"label": "sales", "confidence": 0.5})
        await _waiting(c, handle.id)
    async with Client(store_url, poll_interval=0.02) as c:
        c.register(wf)
        [req] = await c.approvals(run_id=handle.id)
        await c.decide(handle.id, req["name"], approve=True, comment="fine")
        assert await c.result(handle.id, timeout=10) == "routed to sales"


async def test_escalation_timeout_takes_the_declared_outcome(monkeypatch):
    from podium.engine import waits

    monkeypatch.setattr(waits, "HOLD", 0.0)  # park on the request (else a 0.05 s timeout is waited in memory)
    wf = Workflow("sla")

    @wf.step(escalate=Escalate(below=0.9, field="score.value", timeout=0.05, on_timeout="accept"))
    async def guess():
        return {"score": {"value": 0.3}, "answer": 42}

    async with Client(open_store("memory://"), poll_interval=0.02) as c:
        handle = await c.start(wf)
        await _waiting(c, handle.id)
        await asyncio.sleep(0.1)
        await c.resume()  # a worker (podium worker / serve) wakes runs whose timers ran out
        assert await c.result(handle.id, timeout=10) == {"score": {"value": 0.3}, "answer": 42}


async def test_an_output_without_a_confidence_is_a_clear_error():
    wf = Workflow("no-confidence")

    @wf.step(escalate=Escalate(below=0.5))
    async def guess():
        return "just text"

    async with Client("memory://") as c:
        with pytest.raises(RunFailed, match="has no number at 'confidence'"):
            await c.run(wf)
    with pytest.raises(DefinitionError, match="between 0 and 1"):
        Escalate(below=80)


async def test_yaml_steps_escalate_too():
    text = (
        "name: yaml-escalate\nsteps:\n"
        "  - id: score\n    uses: set\n    with:\n      label: '{{ input.label }}'\n      confidence: '{{ input.confidence }}'\n"
        "    escalate: {below: 0.7, role: approver, timeout: 1h}\n"
        "outputs:\n  label: '{{ steps.score.output.label }}'\n"
    )
    wf = pyaml.load_text(text, "test.yaml", base_dir=str(ROOT))
    assert wf.steps["score"].escalate == Escalate(below=0.7, role="approver", timeout=3600.0)
    async with Client("memory://", poll_interval=0.02) as c:
        assert await c.run(wf, {"label": "a", "confidence": 0.9}) == {"label": "a"}
        handle = await c.start(wf, {"label": "b", "confidence": 0.1})
        req = await _waiting(c, handle.id)
        await c.decide(handle.id, req["name"], approve=True)
        assert await c.result(handle.id, timeout=10) == {"label": "b"}
    bad = text.replace("below: 0.7", "below: high")
    with pytest.raises(Exception, match="escalate.below' must be a confidence between 0 and 1"):
        pyaml.load_text(bad, "test.yaml", base_dir=str(ROOT))


async def test_the_person_decides_on_the_output_the_step_resumes_with(store_url):
    """The output is logged before the person sees it: after the decision the step does not run
    again (no repeated side effects, no different output)."""
    runs: list[int] = []
    wf = Workflow("logged-output")

    @wf.step(escalate=Escalate(below=0.9))
    async def guess():
        runs.append(1)
        return {"label": f"guess-{len(runs)}", "confidence": 0.5}

    async with Client(store_url, poll_interval=0.02) as c:
        handle = await c.start(wf)
        req = await _waiting(c, handle.id)
        assert req["payload"]["output"]["label"] == "guess-1"
        await c.decide(handle.id, req["name"], approve=True)
        assert await c.result(handle.id, timeout=10) == {"label": "guess-1", "confidence": 0.5}
        assert len(runs) == 1

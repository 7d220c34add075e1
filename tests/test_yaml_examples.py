"""The YAML examples: each validates against the published JSON Schema and runs on every store; YAML
runs resume in a new engine and fork like Python runs, and compile to the same Workflow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
import yamlsteps

import podium
import podium.yaml as pyaml
from podium import Client, RunStatus, StepStatus, Workflow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
YAML_EXAMPLES = sorted(EXAMPLES.glob("*.yaml"))
TICKET = json.loads((EXAMPLES / "ticket.json").read_text())


def test_there_are_at_least_three_examples_and_all_are_valid() -> None:
    assert len(YAML_EXAMPLES) >= 3
    for path in YAML_EXAMPLES:
        assert pyaml.validate_file(path) == [], path


@pytest.mark.parametrize("path", YAML_EXAMPLES, ids=lambda p: p.name)
def test_examples_match_the_published_json_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "docs" / "workflow.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text()))


def test_published_schema_files_are_current() -> None:
    current = pyaml.schema_text()
    fix = "regenerate them with: python -m podium.yaml"
    assert (ROOT / "docs" / "workflow.schema.json").read_text() == current, fix
    assert (ROOT / "podium" / "yaml" / "schema.json").read_text() == current, fix


def test_published_schema_rejects_what_the_loader_rejects() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(pyaml.workflow_schema())
    bad = {
        "name": "x",
        "steps": [
            {"id": "a", "uses": "sleep", "with": {"seconds": 1, "extra": 2}},
            {"id": "b", "uses": "log", "need": "a", "with": {"message": "hi"}},
            {
                "id": "c",
                "uses": "log",
                "with": {"message": "{{ steps.a.output }}"},
                "loop": {"to": "a", "while": "true"},
            },
        ],
    }
    assert len(list(validator.iter_errors(bad))) >= 3
    problems = pyaml.validate_text(yaml.safe_dump(bad))
    assert {p.code for p in problems} >= {"structure", "unknown-argument", "loop"}
    # Templates are accepted where a typed value goes: editors cannot know what they produce.
    ok = {"name": "x", "steps": [{"id": "a", "uses": "sleep", "with": {"seconds": "{{ input.delay }}"}}]}
    assert list(validator.iter_errors(ok)) == []


async def test_hello(store_url: str) -> None:
    wf = pyaml.load_file(EXAMPLES / "hello.yaml")
    async with Client(store_url) as c:
        assert await c.run(wf, {"name": "Ada"}) == {"message": "Hello, Ada!", "letters": 3}
        handle = await c.start(wf, {"name": "Bo", "shout": True})
        assert await handle.result() == {"message": "HELLO, BO!", "letters": 2}
        h = await c.history(handle.id)
        assert h.step("loud").status is StepStatus.COMPLETED


async def test_triage_retries_fans_out_and_escalates(store_url: str) -> None:
    wf = pyaml.load_file(EXAMPLES / "triage.yaml")
    async with Client(store_url) as c:
        handle = await c.start(wf, TICKET)
        out = await handle.result()
        h = await c.history(handle.id)
    assert out["category"] == "billing" and out["tier"] == "enterprise" and out["escalated"] is True
    assert out["reply"].startswith("Dear valued customer")
    assert out["unsafe_attachments"] == []
    assert h.step("customer").attempts == 2  # the first CRM call timed out; the retry absorbed it
    assert [v.index for v in h.steps if v.step == "scan"] == [0, 1]
    assert h.step("draft").status is StepStatus.COMPLETED
    assert h.step("canned_reply").status is StepStatus.SKIPPED  # the fallback was not needed
    assert getattr(wf, "triggers") == [  # noqa: B009
        {"webhook": "/hooks/tickets"},
        {
            "schedule": "*/15 * * * *",
            "input": {"subject": "Mailbox sweep", "body": "", "email": "robot@example.com"},
        },
    ]


async def test_triage_fallback_step_replaces_a_failed_step(store_url: str) -> None:
    wf = pyaml.load_file(EXAMPLES / "triage.yaml")
    ticket = {
        "subject": "Site down",
        "body": "error 500 everywhere",
        "email": "ops@globex.com",
        "attachments": ["x.exe"],
    }
    async with Client(store_url) as c:
        handle = await c.start(wf, ticket)
        out = await handle.result()
        h = await c.history(handle.id)
    # The history says what happened: draft failed, its fallback ran, the run completed.
    assert h.run.status is RunStatus.COMPLETED
    assert h.step("draft").status is StepStatus.FAILED
    assert "no reply template" in h.step("draft").error["message"]
    assert h.step("canned_reply").status is StepStatus.COMPLETED
    assert out["reply"] == f"We received 'Site down' and are looking into it. Reference: {handle.id}."
    assert out["unsafe_attachments"] == ["x.exe"] and out["urgent"] is True


async def test_review_loop(store_url: str) -> None:
    wf = pyaml.load_file(EXAMPLES / "review_loop.yaml")
    async with Client(store_url) as c:
        handle = await c.start(wf, {"topic": "the summer party"})
        out = await handle.result()
        h = await c.history(handle.id)
    assert out["approved"] is True
    assert all(f"{w}: to be confirmed" in out["text"] for w in ("Who", "When", "Where"))
    assert max(v.iteration for v in h.steps if v.step == "write") == 3


async def test_orders_calls_a_python_workflow_and_a_yaml_workflow(store_url: str) -> None:
    wf = pyaml.load_file(EXAMPLES / "orders.yaml")
    orders = [{"order_id": 1, "amount": 80}, {"order_id": 2, "amount": 9000}]
    async with Client(store_url) as c:
        handle = await c.start(wf, {"orders": orders, "team": "ops"})
        out = await handle.result()
        children = await c.list(parent_run_id=handle.id)
    assert [o["status"] for o in out["orders"]] == ["confirmed", "held"]
    assert out["held"] == [2]
    assert out["announcement"] == "Hello, ops: 1 orders confirmed!"
    assert sorted(r.workflow for r in children) == ["hello", "order-demo", "order-demo"]


async def test_a_yaml_run_resumes_in_a_new_engine(tmp_path: Path) -> None:
    path = tmp_path / "gated.yaml"
    path.write_text(
        "name: gated\nsteps:\n"
        "  - {id: first, uses: 'yamlsteps:double', with: {x: '{{ input.n }}'}}\n"
        "  - {id: second, uses: 'yamlsteps:wait_for_gate', with: {value: 'v{{ steps.first.output }}'}}\n"
        "  - {id: third, uses: set, with: {result: '{{ steps.second.output }}!'}}\n"
    )
    url = f"sqlite:///{tmp_path}/r.db"
    yamlsteps.CALLS.clear()
    yamlsteps.GATE = asyncio.Event()
    try:
        c1 = Client(url)
        await c1.open()
        handle = await c1.start(pyaml.load_file(path), {"n": 21})
        while "gate:v42" not in yamlsteps.CALLS:
            await asyncio.sleep(0.01)
        await c1.close()  # not drained: handed back unfinished
        yamlsteps.GATE.set()
        async with Client(url, recover=False) as c2:  # knows no workflows: it reloads the file by its ref
            run = await c2.get(handle.id)
            assert run.status is RunStatus.RUNNING and run.workflow_ref == str(path)
            assert await c2.resume() == [handle.id]
            assert await c2.result(handle.id) == {"result": "V42!"}
    finally:
        yamlsteps.GATE = None
    assert yamlsteps.CALLS == ["double:21", "gate:v42", "gate:v42"]  # first was not redone


async def test_a_yaml_run_forks_from_a_step(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/f.db"
    async with Client(url) as c:
        first = await c.start(pyaml.load_file(EXAMPLES / "triage.yaml"), TICKET)
        await first.result()
    async with Client(url) as c:
        forked = await c.fork(first.id, "draft", input={**TICKET, "subject": "Forked"})
        out = await forked.result()
        h = await c.history(forked.id)
    assert "'Forked'" in out["reply"]
    assert h.step("classify").reused_from == first.id and h.step("customer").reused_from == first.id
    assert h.step("draft").reused_from is None


def test_yaml_compiles_to_the_workflow_python_would_build() -> None:
    wf = pyaml.load_text(
        """
name: parity
version: "2"
steps:
  - id: make_order
    uses: yamlsteps:make_order
    with: {order_id: "{{ input.id }}", amount: 10}
  - id: total
    uses: yamlsteps:total
    retry: 3
    timeout: 2s
    labels: cpu
  - id: note
    uses: log
    needs: [total]
    if: input.verbose
    with: {message: "#{{ steps.make_order.output.order_id }}"}
""",
        "parity.yaml",
        base_dir=str(ROOT),
    )
    py = Workflow("parity", version="2")

    @py.step
    def make_order(input: dict) -> yamlsteps.Order:
        return yamlsteps.make_order(input["id"], 10)

    @py.step(retry=podium.RetryPolicy(max_attempts=3), timeout=2.0, labels=["cpu"])
    def total(make_order: yamlsteps.Order) -> float:
        return yamlsteps.total(make_order)

    @py.step(needs=["total"], when=lambda input: input["verbose"])
    def note(make_order: yamlsteps.Order) -> str:
        return f"#{make_order.order_id}"

    py.freeze()
    for sid in py.order:
        a, b = wf.steps[sid], py.steps[sid]
        fields = (
            "deps",
            "data_deps",
            "needs",
            "retry",
            "timeout",
            "map",
            "max_parallel",
            "labels",
            "on_error",
        )
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields], sid
        assert (a.when is None) == (b.when is None)
    assert wf.order == py.order and wf.version == "2"
    # The function's return annotation is checked, as in Python.
    assert wf.steps["total"].output_validator is not None
    assert podium.run(wf, {"id": 7, "verbose": True}) == podium.run(py, {"id": 7, "verbose": True}) == "#7"

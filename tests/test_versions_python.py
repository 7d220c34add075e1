"""Versions of Python workflows (snapshot + fingerprint) and of prompts; runs stay pinned."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from podium import Client, RunStatus, open_store
from podium.errors import ConfigError, DefinitionError, NotFound

FLOW = '''
from podium import StepContext, Workflow

wf = Workflow("refunds", version="1")


@wf.step
async def decide(ctx: StepContext, input):
    {decide_body}


@wf.step
async def finish(ctx: StepContext, decide):
    approved = await ctx.wait_for("go")
    prompt = await ctx.prompt("refund.reply")
    return {{"decision": decide, "approved": approved, "reply": prompt.render(name="Ana"), "v": prompt.version}}
'''


def write_flow(path, decide_body: str) -> str:
    path.write_text(textwrap.dedent(FLOW.format(decide_body=decide_body)))
    return f"{path}:wf"


def _shared(store_url: str):
    return open_store(store_url) if store_url.startswith("memory") else store_url


async def _wait_status(c: Client, run_id: str, status: RunStatus) -> None:
    for _ in range(500):
        if (await c.get(run_id)).status is status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} never became {status}")


async def test_python_workflow_versions_pin_runs_to_their_code(store_url, tmp_path):
    store = _shared(store_url)
    flow = tmp_path / "flows.py"
    ref = write_flow(flow, 'return "refund"')
    async with Client(store, poll_interval=0.02) as c:
        await c.put_prompt("refund.reply", "Hello {name}, your refund is on its way.")
        wf = await c.deploy(ref)
        assert wf.version == "1"
        again = await c.deploy(ref)  # same code: no new version
        assert again.version == "1"
        [v1] = await c.versions("refunds")
        assert v1["kind"] == "python" and v1["ref"] == ref and v1["active"]
        handle = await c.start("refunds", {"order": 7})
        await _wait_status(c, handle.id, RunStatus.WAITING)

    # The code changes without a deploy: the pinned run must not resume on it.
    ref = write_flow(flow, 'return "refund in full"  # changed policy')
    async with Client(store, poll_interval=0.02) as c:
        with pytest.raises(DefinitionError, match="its code changed since that version was deployed"):
            await c.deployments.load_deployed("refunds", "1")
        wf2 = await c.deploy(ref)
        assert wf2.version == "1.2"  # same declared version, other code: a new version
        diff = await c.diff("refunds", "1", "1.2")
        assert '-    return "refund"' in diff and '+    return "refund in full"' in diff
        assert [v["version"] for v in await c.versions("refunds") if v["active"]] == ["1.2"]

    # Back to the first code: the run pinned to version 1 resumes in a new process.
    write_flow(flow, 'return "refund"')
    async with Client(store, poll_interval=0.02) as c:
        await c.put_prompt("refund.reply", "Dear {name}, refunded.")
        await c.signal(handle.id, "go", True)
        out = await c.result(handle.id, timeout=10)
        assert out == {"decision": "refund", "approved": True, "reply": "Dear Ana, refunded.", "v": "2"}
        assert (await c.get(handle.id)).version == "1"
        actions = [e.action for e in await c.audit_log()]
        assert actions.count("workflow.deploy") == 3 and "prompt.put" in actions


async def test_prompts_are_versioned_and_a_run_keeps_the_version_it_read(store_url):
    from podium import StepContext, Workflow

    wf = Workflow("greeter")

    @wf.step
    async def first(ctx: StepContext):
        return (await ctx.prompt("greeting")).render(name="Bo")

    @wf.step
    async def second(ctx: StepContext, first):
        await ctx.wait_for("next")
        return [first, (await ctx.prompt("greeting")).render(name="Bo")]

    async with Client(_shared(store_url), poll_interval=0.02) as c:
        assert (await c.put_prompt("greeting", "Hi {name}")).version == "1"
        handle = await c.start(wf)
        await _wait_status(c, handle.id, RunStatus.WAITING)
        assert (await c.put_prompt("greeting", "Good day, {name}.", description="formal")).version == "2"
        assert (await c.put_prompt("greeting", "Good day, {name}.")).version == "2"  # unchanged
        await c.signal(handle.id, "next")
        assert await c.result(handle.id, timeout=10) == ["Hi Bo", "Hi Bo"]  # pinned to version 1

        later = await c.start(wf)
        await _wait_status(c, later.id, RunStatus.WAITING)
        await c.signal(later.id, "next")
        assert await c.result(later.id, timeout=10) == ["Good day, Bo.", "Good day, Bo."]

        assert "-Hi {name}" in await c.diff_prompt("greeting", "1", "2")
        assert await c.rollback_prompt("greeting") == "1"
        assert (await c.prompt("greeting")).text == "Hi {name}"
        rows = await c.prompt_versions("greeting")
        assert [(r["version"], r["active"]) for r in rows] == [("1", True), ("2", False)]
        assert rows[1]["description"] == "formal"

        with pytest.raises(ConfigError, match="needs name"):
            (await c.prompt("greeting")).render()
        with pytest.raises(NotFound, match="did you mean 'greeting'"):
            await c.prompt("greting")


def test_prompt_cli_round_trip(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from podium.cli import cli

    monkeypatch.setenv("PODIUM_DB", f"sqlite:///{tmp_path}/p.db")
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    (tmp_path / "v1.txt").write_text("Summarise: {ticket}\n")
    (tmp_path / "v2.txt").write_text("Summarise briefly: {ticket}\n")
    r = CliRunner()
    assert "version 1 is active" in r.invoke(cli, ["prompts", "put", "summary", str(tmp_path / "v1.txt")]).output
    assert "version 2 is active" in r.invoke(cli, ["prompts", "put", "summary", str(tmp_path / "v2.txt"), "-m", "shorter"]).output
    assert r.invoke(cli, ["prompts", "list"]).output.strip() == "summary\t2"
    assert r.invoke(cli, ["prompts", "show", "summary", "-v", "1"]).output == "Summarise: {ticket}\n"
    assert "+Summarise briefly" in r.invoke(cli, ["prompts", "diff", "summary", "1", "2"]).output
    assert "version 1 is active" in r.invoke(cli, ["prompts", "rollback", "summary"]).output
    versions = r.invoke(cli, ["prompts", "versions", "summary"]).output.splitlines()
    assert versions[0].startswith("* 1") and "shorter" in versions[1]
    missing = r.invoke(cli, ["prompts", "show", "nope"])
    assert missing.exit_code != 0 and "no prompt named 'nope'" in missing.output
    bad = r.invoke(cli, ["deploy", "no-such-thing"])
    assert bad.exit_code == 2 and "neither a file nor a Python reference" in bad.output


async def test_runs_are_recorded_as_the_deployed_version_they_are(store_url, tmp_path):
    """Starting a definition directly (a file, a module) labels the run with the deployed version
    whose definition it is; one that matches no deployed version is refused; a rollback that cannot
    load its version changes nothing."""
    import podium.yaml as pyaml

    store = _shared(store_url)
    flow = tmp_path / "hello.yaml"
    flow.write_text('name: hello\nversion: "1"\nsteps:\n  - id: greet\n    uses: set\n    with: {text: "Hello"}\n')
    async with Client(store) as c:
        await c.deploy(str(flow))
        flow.write_text(flow.read_text().replace("Hello", "Hi"))
        await c.deploy(str(flow))  # 1.2
    async with Client(store) as c:
        handle = await c.start(pyaml.load_file(flow))
        await handle.result()
        assert (await c.get(handle.id)).version == "1.2"
        flow.write_text(flow.read_text().replace("Hi", "Hey"))
        with pytest.raises(DefinitionError, match=r"matches none of them: it changed since it was deployed"):
            await c.start(pyaml.load_file(flow))

    py = tmp_path / "pyflow.py"
    ref = write_flow(py, 'return "refund"')
    async with Client(store) as c:
        await c.deploy(ref)
        ref = write_flow(py, 'return "refund twice"  # longer')
        await c.deploy(ref)  # refunds 1.2
    async with Client(store) as c:  # a new process: version 1's code is gone
        with pytest.raises(DefinitionError, match="needs that code importable again"):
            await c.rollback("refunds", to="1")
        assert [v["version"] for v in await c.versions("refunds") if v["active"]] == ["1.2"]


async def test_a_worker_with_changed_code_does_not_resume_runs_pinned_to_the_old_code(store_url, tmp_path):
    from podium import load_workflow

    if store_url.startswith("memory"):
        pytest.skip("a memory store does not outlive its client")
    flow = tmp_path / "pinned.py"
    ref = write_flow(flow, 'return "code A"')
    async with Client(store_url, poll_interval=0.02) as c:
        await c.put_prompt("refund.reply", "Hi {name}")
        await c.deploy(ref)
        handle = await c.start("refunds", {})
        await _wait_status(c, handle.id, RunStatus.WAITING)
    ref = write_flow(flow, 'return "code B"  # edited in place')
    async with Client(store_url, poll_interval=0.02) as c:
        await c.deploy(ref)  # 1.2
    async with Client(store_url, poll_interval=0.02) as c:
        wf = c.register(load_workflow(ref))  # a worker importing today's module: declares version 1
        await c.signal(handle.id, "go", True)
        await asyncio.sleep(0.5)
        assert (await c.get(handle.id)).status is not RunStatus.COMPLETED  # not run on code B
        assert wf.version == "1.2"  # recognised as the deployed version it is


async def test_a_stored_prompt_cannot_reach_past_the_values_it_is_given():
    """Attack: whoever may put prompts (workflows.deploy) writes a template that walks from a value
    to the engine's globals (``{order.__init__.__globals__[os].environ}``) or into a Secret
    (``{key._value}``): str.format follows attributes and indexes, and the environment's API keys
    went into the prompt, on to the model and into the run's trace."""
    import dataclasses

    from podium.secret import Secret

    @dataclasses.dataclass
    class Order:
        id: int
        items: dict

    async with Client("memory://") as c:
        for text in (
            "Order {order.__init__.__globals__}",
            "Order {order.__class__.__init__.__globals__}",
            "Key {key._value}",
            "Order {order.id:{order.__init__.__globals__[Secret]}}",
        ):
            await c.put_prompt("leaky", text)
            with pytest.raises(ConfigError, match="may only name the values given"):
                (await c.prompt("leaky")).render(order=Order(7, {"a": 1}), key=Secret("hunter2secret"))
        await c.put_prompt("fine", "Order {order.id}: {order.items[a]} ({n:>3})")
        assert (await c.prompt("fine")).render(order=Order(7, {"a": 1}), n=5) == "Order 7: 1 (  5)"


def test_a_changed_file_refused_at_start_names_the_deploy_command_that_works(tmp_path, monkeypatch):
    """A new user's run-through: a copy of a deployed workflow that changed was refused with
    "Deploy it as a new version ('podium workflows deploy ...')": no command to paste. It names the
    file now, and pasting that command (as an admin) lets the same file run."""
    import shlex

    from click.testing import CliRunner

    from podium.cli import cli

    monkeypatch.setenv("PODIUM_DB", f"sqlite:///{tmp_path}/p.db")
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flows").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "flows" / "drafts.yaml").write_text("name: drafts\nsteps:\n  - id: w\n    uses: set\n    with: {text: v1}\n")
    (tmp_path / "mine" / "drafts.yaml").write_text("name: drafts\nsteps:\n  - id: w\n    uses: set\n    with: {text: v2}\n")
    r = CliRunner()
    assert r.invoke(cli, ["workflows", "deploy", "flows/drafts.yaml"]).exit_code == 0
    refused = r.invoke(cli, ["run", "mine/drafts.yaml", "-q"])
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert "..." not in refused.output, refused.output
    text = " ".join(refused.output.split())
    command = text.split("workflows.deploy: ", 1)[1].split(")", 1)[0]
    assert command.startswith("podium workflows deploy ") and "drafts.yaml" in command, text
    assert "(podium run drafts)" in text, text
    deployed = r.invoke(cli, shlex.split(command)[1:])
    assert deployed.exit_code == 0 and "version 1.2" in deployed.output, deployed.output
    ran = r.invoke(cli, ["run", "mine/drafts.yaml", "-q"])
    assert ran.exit_code == 0 and '"v2"' in ran.output, ran.output


async def test_attack_a_prompt_cannot_pad_a_value_to_gigabytes() -> None:
    """Attack (eighth session's review): a stored prompt is written by whoever may deploy, and
    ``{n:>999999999}`` made ``render`` build a gigabyte of spaces in the engine's process (every
    tenant's runs there), a nested ``{n:{width}}`` the same with a width from the run's data. A
    width or precision is now at most 9,999."""
    async with Client("memory://") as c:
        for text in ("{n:>999999999}", "{n:.999999999f}", "{n:{w}}", "{n:0999999999}"):
            await c.put_prompt("wide", text)
            with pytest.raises(ConfigError, match="width or precision beyond 9,999"):
                (await c.prompt("wide")).render(n=5, w="999999999")
        await c.put_prompt("wide", "{n:>9999}|{n:.2f}|{n:{w}}")
        assert len((await c.prompt("wide")).render(n=5, w="3")) == 9999 + 1 + 4 + 1 + 3

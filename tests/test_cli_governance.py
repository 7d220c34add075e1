"""Governance from the command line: users and tokens, approvals, the audit log, kill switches."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import podium

FLOW = (
    "import podium\n"
    "wf = podium.Workflow('refund')\n\n"
    "@wf.step\n"
    "async def ask(ctx: podium.StepContext, input):\n"
    "    d = await ctx.approval(input, title='refund?', role='approver')\n"
    "    return {'approved': d['approved'], 'amount': d['payload']['amount'], 'by': d['by']}\n"
)


def cli(tmp: Path, *args: str, token: str | None = None, check: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_DB": f"sqlite:///{tmp}/gov.db", "COLUMNS": "200"}
    env.pop("PODIUM_TOKEN", None)
    if token:
        env["PODIUM_TOKEN"] = token
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", *args],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == check, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


def test_governance_from_the_cli(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    root = cli(tmp_path, "users", "add", "root", "--role", "admin", "--token").stdout.strip()
    assert root.startswith("pod_")
    assert "needs an API token" in cli(tmp_path, "runs", check=2).stderr  # users exist: local mode is over
    cli(tmp_path, "users", "add", "alice", "--role", "approver", token=root)
    alice = cli(tmp_path, "tokens", "create", "alice", token=root).stdout.strip()
    refused = cli(tmp_path, "run", "flows:wf", "--input", '{"amount": 80}', token=alice, check=2).stderr
    assert "may not runs.start" in refused and "podium users grant alice ROLE" in refused
    assert "roles approver, operator" in cli(tmp_path, "users", "grant", "alice", "operator", token=root).stderr
    assert "alice\tapprover,operator" in cli(tmp_path, "users", "list", token=root).stdout
    cli(tmp_path, "users", "add", "alice", "--role", "approver", token=root)  # back to approver only
    cli(tmp_path, "users", "disable", "alice", token=root)  # the refusal says how she comes back
    assert "podium users enable alice" in cli(tmp_path, "approvals", token=alice, check=2).stderr
    cli(tmp_path, "users", "enable", "alice", token=root)

    parked = cli(tmp_path, "run", "flows:wf", "--input", '{"amount": 80}', token=root, check=3).stdout
    assert "waits for a person's decision" in parked and "podium approvals approve " in parked  # not "podium runs signal"
    assert "podium runs signal" not in parked and "refund?" in parked
    inbox = cli(tmp_path, "approvals", token=alice).stdout
    assert "refund?" in inbox and "approver" in inbox
    run_id = json.loads(cli(tmp_path, "runs", "--json", token=root).stdout.splitlines()[0])["id"]
    out = cli(tmp_path, "approve", run_id, "-m", "fine", "--payload", '{"amount": 50}', token=alice).stdout
    assert "approved" in out and "completed" in out
    shown = json.loads(cli(tmp_path, "show", run_id, "--json", token=root).stdout)
    assert shown["run"]["output"] == {"approved": True, "amount": 50, "by": "alice"}
    assert "no approvals waiting" in cli(tmp_path, "approvals", token=alice).stdout

    cli(tmp_path, "killswitch", "set", "workflow", "refund", "-m", "incident", token=root)
    assert "incident" in cli(tmp_path, "killswitch", "list", token=root).stdout
    assert "switched off" in cli(tmp_path, "run", "flows:wf", "--input", "{}", token=root, check=2).stderr
    cli(tmp_path, "killswitch", "clear", "workflow", "refund", token=root)

    assert "chain intact" in cli(tmp_path, "audit", "verify", token=root).stdout
    exported = [json.loads(line) for line in cli(tmp_path, "audit", "export", token=root).stdout.splitlines()]
    actions = [e["action"] for e in exported]
    for action in ("user.put", "token.create", "run.start", "approval.decide", "killswitch.set", "run.end"):
        assert action in actions
    assert not any(root in json.dumps(e) or alice in json.dumps(e) for e in exported)  # no secrets

    db = sqlite3.connect(tmp_path / "gov.db")
    db.execute("UPDATE audit SET data = '{\"approved\": false}' WHERE action = 'approval.decide'")
    db.commit()
    db.close()
    bad = cli(tmp_path, "audit", "verify", token=root, check=1).stderr
    assert "tampered" in bad and "was edited" in bad


def test_versions_from_the_cli(tmp_path: Path) -> None:
    flow = tmp_path / "hello.yaml"
    flow.write_text('name: hello\nversion: "1"\nsteps:\n  - id: say\n    uses: set\n    with: {text: "one"}\n')
    assert "version 1 (active)" in cli(tmp_path, "deploy", str(flow)).stdout
    flow.write_text(flow.read_text().replace('"one"', '"two"'))
    assert "version 1.2 (active)" in cli(tmp_path, "deploy", str(flow)).stdout
    listing = cli(tmp_path, "versions", "hello").stdout.splitlines()
    assert listing[0].startswith("  1\t") and listing[1].startswith("* 1.2\t")
    assert '+    with: {text: "two"}' in cli(tmp_path, "diff", "hello", "1", "1.2").stdout
    assert '"text": "two"' in cli(tmp_path, "run", "hello").stdout
    assert "version 1 is active" in cli(tmp_path, "rollback", "hello").stdout
    assert '"text": "one"' in cli(tmp_path, "run", "hello").stdout
    assert "has no version '7'" in cli(tmp_path, "rollback", "hello", "--to", "7", check=2).stderr


def test_approve_names_what_is_wrong_with_the_run_or_its_requests(tmp_path: Path) -> None:
    """Bad input to `podium approvals approve`: an unknown run says so (not "0 open requests"), and
    a run with nothing left to decide says which state it is in and where to look."""
    (tmp_path / "flows.py").write_text(FLOW)
    unknown = cli(tmp_path, "approvals", "approve", "nosuchrun", "-m", "ok", check=2).stderr
    assert "no run with id 'nosuchrun'" in unknown and "open requests" not in unknown
    cli(tmp_path, "run", "flows:wf", "--input", '{"amount": 80}', check=3)
    run_id = json.loads(cli(tmp_path, "runs", "--json").stdout.splitlines()[0])["id"]
    assert "approved" in cli(tmp_path, "approvals", "approve", run_id, "-m", "fine").stdout
    again = cli(tmp_path, "approvals", "approve", run_id, "-m", "twice", check=2).stderr
    assert f"run {run_id} (completed) has no open approval request" in again and "podium approvals" in again


SPOOF_FLOW = (
    "import podium\n"
    "wf = podium.Workflow('refund')\n\n"
    "@wf.step\n"
    "async def ask(ctx: podium.StepContext, input):\n"
    "    d = await ctx.approval(input, title=f\"refund {input['amount']} EUR to {input['to']}?\")\n"
    "    return d['approved']\n"
)


def test_an_approval_title_from_run_data_cannot_break_or_spoof_the_inbox(tmp_path: Path) -> None:
    """Attack: an approval's title is built from the run's input (an event, a webhook body), and
    `podium approvals` printed it as rich markup with the terminal's control characters: a title
    with `[/x]` made the inbox crash for every approver (MarkupError), and one with escape sequences
    could hide or overwrite what the approver reads (`ESC[8m` conceals the rest of the line). Now
    the title, the request and the workflow are shown as text, control characters as \\xNN."""
    (tmp_path / "flows.py").write_text(SPOOF_FLOW)
    to = "[/x] acme\x1b[8m (really 9,000,000 EUR)\x1b[0m"
    parked = cli(tmp_path, "run", "flows:wf", "--input", json.dumps({"amount": 80, "to": to}), check=3).stdout
    assert "\x1b" not in parked and "[/x] acme\\x1b[8m" in parked
    inbox = cli(tmp_path, "approvals").stdout
    assert "\x1b" not in inbox, repr(inbox)
    assert "refund 80 EUR to [/x] acme\\x1b[8m (really 9,000,000 EUR)\\x1b[0m?" in inbox, inbox
    # Invisible characters that reorder text (a right-to-left override) are shown, not obeyed.
    cli(tmp_path, "run", "flows:wf", "--input", json.dumps({"amount": 80, "to": "acme \u202e0009"}), check=3)
    inbox = cli(tmp_path, "approvals").stdout
    assert "\u202e" not in inbox and "acme \\u202e0009" in inbox, repr(inbox)


def test_attack_the_cli_knowledge_and_memory_commands_obey_a_provider_kill_switch(tmp_path: Path) -> None:
    """Before: with provider openai switched off during an incident, runs and the HTTP API stopped
    embedding with it, but ``podium kb ingest/search`` and ``podium memory show --query`` went on
    sending documents and queries to it. Now they stop first (exit 2, nothing sent, how to clear)."""
    (tmp_path / "doc.txt").write_text("Refunds take five days for ann@example.com.")
    cli(tmp_path, "killswitch", "set", "provider", "openai", "-m", "incident 42")
    remote = ("--embedder", "openai:text-embedding-3-small")
    for args in (
        ("kb", "ingest", "doc.txt", "--kb", "handbook", *remote),
        ("kb", "search", "handbook", "refund for ann", *remote),
        ("memory", "show", "customer:1", "--query", "who is VIP", *remote),
    ):
        err = cli(tmp_path, *args, check=2).stderr
        assert "provider openai is switched off (incident 42" in err and "nothing was sent" in err, err
        assert "podium killswitch clear provider openai" in err
    cli(tmp_path, "killswitch", "clear", "provider", "openai")
    cli(tmp_path, "kb", "ingest", "doc.txt", "--kb", "local-base", "--embedder", "hash:64")  # local: unaffected
    cli(tmp_path, "killswitch", "set", "all", "-m", "stop everything")
    err = cli(tmp_path, "kb", "search", "local-base", "refund", check=2).stderr
    assert "everything is switched off (stop everything" in err


def test_clearing_a_kill_switch_that_is_not_set_says_so(tmp_path: Path) -> None:
    """``podium killswitch clear`` of a switch that was never set said "switched on" and exited 0, so
    a typo (``refunds`` for ``refund``) looked like the incident's end while the switch stayed on.
    It is a user error (exit 2) naming the switches that are on; nothing is audited."""
    cli(tmp_path, "killswitch", "set", "workflow", "refund", "-m", "incident 42")
    typo = cli(tmp_path, "killswitch", "clear", "workflow", "refunds", check=2)
    assert "switched on" not in typo.stdout + typo.stderr
    assert "no kill switch workflow:refunds is set" in typo.stderr, typo.stderr
    assert "on now: workflow:refund" in typo.stderr and "podium killswitch list" in typo.stderr
    assert "workflow:refund" in cli(tmp_path, "killswitch", "list").stdout  # still on
    assert "switched on workflow:refund" in cli(tmp_path, "killswitch", "clear", "workflow", "refund").stdout
    again = cli(tmp_path, "killswitch", "clear", "workflow", "refund", check=2).stderr
    assert "no kill switch workflow:refund is set" in again and "no kill switch is on" in again
    assert "no kill switch all:* is set" in cli(tmp_path, "killswitch", "clear", "all", check=2).stderr
    actions = [json.loads(line)["action"] for line in cli(tmp_path, "audit", "export").stdout.splitlines()]
    assert actions.count("killswitch.clear") == 1, actions


def test_a_token_for_a_disabled_user_is_refused(tmp_path: Path) -> None:
    """``podium tokens create`` for a disabled user printed a token (refused at every use while they
    stay disabled, valid again the moment they are enabled: an admin who disabled someone for a
    reason would not expect a fresh credential waiting). It is refused, naming how they come back."""
    root = cli(tmp_path, "users", "add", "root", "--role", "admin", "--token").stdout.strip()
    cli(tmp_path, "users", "add", "bob", "--role", "operator", token=root)
    cli(tmp_path, "users", "disable", "bob", token=root)
    refused = cli(tmp_path, "tokens", "create", "bob", token=root, check=2)
    assert "pod_" not in refused.stdout, refused.stdout
    assert "user 'bob' is disabled" in refused.stderr and "podium users enable bob" in refused.stderr, refused.stderr
    also = cli(tmp_path, "users", "add", "bob", "--role", "operator", "--token", token=root, check=2)
    assert "pod_" not in also.stdout and "podium users enable bob" in also.stderr
    cli(tmp_path, "users", "enable", "bob", token=root)
    assert cli(tmp_path, "tokens", "create", "bob", token=root).stdout.strip().startswith("pod_")


def test_clearing_again_wakes_runs_left_parked_by_a_switch_cleared_since(tmp_path: Path) -> None:
    """Regression (review of the fifth session): a run parked by a pause switch that was cleared
    without waking it (the clearing process stopped after the switch was gone: the run says its
    switch was "cleared since" and names ``podium killswitch clear``) was woken by clearing again.
    Since clearing an unset switch became an error, nothing woke it. Clearing an unset switch is
    still an error naming the switches on, and it wakes the runs a switch parked (they look at the
    switches again: those under a switch still on park again)."""
    _parked_by_a_switch(tmp_path, "incident 7")
    _cleared_without_waking(tmp_path, "workflow:nightly")  # the switch is gone, the wake never came
    shown = cli(tmp_path, "runs", "--json").stdout
    assert '"waiting"' in shown, shown
    again = cli(tmp_path, "killswitch", "clear", "workflow", "nightly", check=2)
    assert "no kill switch workflow:nightly is set" in again.stderr, again.stderr
    assert '"completed"' in cli(tmp_path, "runs", "--json").stdout


def test_clearing_a_switch_with_no_wait_leaves_the_runs_to_a_worker(tmp_path: Path) -> None:
    """Found by the fifth session's new-user run-through: ``podium killswitch clear`` drove the
    runs it woke until they ended (12.5 s for one), so a runbook step hung on a long run.
    ``--no-wait`` wakes them and returns; a worker (or server) on the store drives them."""
    _parked_by_a_switch(tmp_path, "incident 8")
    cleared = cli(tmp_path, "killswitch", "clear", "workflow", "nightly", "--no-wait")
    assert "1 paused run(s) woken" in cleared.stdout, cleared.stdout
    shown = json.loads(cli(tmp_path, "runs", "--json").stdout.splitlines()[0])
    assert shown["status"] != "completed", shown  # not driven by the clearing command
    cli(tmp_path, "runs", "resume")  # an engine on the store takes it up
    assert '"completed"' in cli(tmp_path, "runs", "--json").stdout


def _cleared_without_waking(tmp_path: Path, *keys: str) -> None:
    """Switches cleared by a process that stopped before it woke the runs they parked: what
    ``clear_switch`` does first (the signed ``killswitch.clear``, then the row), and no more.
    (Deleting the rows alone no longer clears a switch: the signed log keeps it on.)"""

    async def clear() -> None:
        async with podium.Client(f"sqlite:///{tmp_path}/gov.db", execute=False) as c:
            for key in keys:
                await c.governance.record("killswitch.clear", key)
                await c.store.kv_put("switches", key, None)

    asyncio.run(clear())


def _parked_by_a_switch(tmp_path: Path, reason: str) -> str:
    """A run of ``nightly`` parked by a ``workflow nightly`` pause switch (set with ``reason``); its id."""
    (tmp_path / "flows.py").write_text(
        "import podium\nwf = podium.Workflow('nightly')\n\n@wf.step\nasync def wait(ctx: podium.StepContext):\n"
        "    return await ctx.wait_for('go')\n\n@wf.step\nasync def hello(wait):\n    return 'hi'\n"
    )
    cli(tmp_path, "run", "flows:wf", "--input", "{}", check=3)
    rid = str(json.loads(cli(tmp_path, "runs", "--json").stdout.splitlines()[0])["id"])
    cli(tmp_path, "killswitch", "set", "workflow", "nightly", "-m", reason)
    assert "waiting" in cli(tmp_path, "runs", "signal", rid, "go").stdout  # parked by the switch now
    return rid


def test_runs_show_says_which_kill_switch_parked_a_run_and_how_to_clear_it(tmp_path: Path) -> None:
    """A new user's run-through (fifth session): ``podium runs show`` of a run parked by a
    ``pause`` kill switch listed its steps, nothing about why it stood still. It now says in one
    line which switch parked it and the command that clears it; and, for a switch cleared since
    without waking it, that clearing it again wakes the run."""
    rid = _parked_by_a_switch(tmp_path, "incident 9")
    shown = cli(tmp_path, "runs", "show", rid).stdout
    assert "parked by kill switch workflow:nightly (incident 9, by local)" in shown, shown
    assert "once it is cleared: podium killswitch clear workflow nightly" in shown, shown
    cli(tmp_path, "killswitch", "set", "kind", "http", "-m", "not this one")  # over no step of it
    assert "kind:http" not in cli(tmp_path, "runs", "show", rid).stdout
    _cleared_without_waking(tmp_path, "workflow:nightly", "kind:http")  # by a process that stopped before waking it
    shown = cli(tmp_path, "runs", "show", rid).stdout
    assert "no kill switch that parks it is on now" in shown, shown
    assert "podium killswitch clear workflow nightly" in shown, shown
    cli(tmp_path, "killswitch", "clear", "workflow", "nightly", check=2)  # as it says: wakes the run
    assert '"completed"' in cli(tmp_path, "runs", "--json").stdout


def test_runs_show_says_a_run_was_handed_back_by_a_revoked_worker(tmp_path: Path, monkeypatch: Any) -> None:
    """A new user's run-through (fifth session): a run whose worker's token was revoked is handed
    back (released, still running, for a worker whose token stands), and ``podium runs show``
    showed it running, with nothing saying that no engine drives it or why. The engine now audits
    the hand-back (``run.handback``) and ``runs show`` says, in one line, who handed it back, why,
    and what takes it up."""
    rid, root = _handed_back(tmp_path, monkeypatch)
    shown = cli(tmp_path, "runs", "show", rid, token=root).stdout
    assert "handed back" in shown and "w1" in shown and "'host-7' of 'w1' was revoked" in shown, shown
    assert "a worker whose token is valid" in shown and "podium worker" in shown, shown
    assert f"podium runs resume {rid}" in shown, shown


def test_runs_show_tells_the_hand_back_only_to_who_may_read_the_audit_log(tmp_path: Path, monkeypatch: Any) -> None:
    """Seventh review: the hand-back line is read from the audit log (``run.handback``: which
    account's engine, its token's name, why it was refused), through the store, so a viewer, who
    may read runs but not the audit log (``audit.read``), read it in ``runs show``. They get the
    line any released run gets."""
    import asyncio

    from podium import Client

    rid, root = _handed_back(tmp_path, monkeypatch)

    async def viewer() -> str:
        async with Client(f"sqlite:///{tmp_path}/gov.db", token=root, execute=False) as admin:
            await admin.create_user("vera", ["viewer"])
            return await admin.create_token("vera")

    shown = cli(tmp_path, "runs", "show", rid, token=asyncio.run(viewer())).stdout
    assert "host-7" not in shown and "handed back" not in shown, shown
    assert "not driven by any engine" in shown and f"podium runs resume {rid}" in shown, shown


def _handed_back(tmp_path: Path, monkeypatch: Any) -> tuple[str, str]:
    """A run handed back by a worker whose token was revoked; (its id, an admin's token)."""
    import asyncio
    import contextlib

    from podium import Client, StepContext, Workflow
    from podium.errors import AuthError
    from podium.governance import identity

    monkeypatch.setattr(identity, "RECHECK_SECONDS", 0.1)
    db = f"sqlite:///{tmp_path}/gov.db"
    wf = Workflow("gated")

    @wf.step
    async def wait_then_act(ctx: StepContext, input: Any) -> str:
        await asyncio.sleep(60)
        return "done"

    async def main() -> tuple[str, str]:
        async with Client(db) as setup:
            await setup.create_user("root", ["admin"])
            root = await setup.create_token("root")
        async with Client(db, token=root, workflows=[wf], execute=False) as admin:
            await admin.create_user("w1", ["worker"], service=True)
            t1 = await admin.create_token("w1", name="host-7")
            run = await admin.start(wf, {})
            async with Client(db, workflows=[wf], token=t1, poll_interval=0.05) as w1:
                working = asyncio.create_task(w1.work(asyncio.Event()))
                for _ in range(500):
                    if (await admin.get(run.id)).owner is not None:
                        break
                    await asyncio.sleep(0.02)
                await admin.revoke_token("w1", "host-7")
                with contextlib.suppress(AuthError):
                    await asyncio.wait_for(working, 10)
                for _ in range(500):
                    if (await admin.get(run.id)).owner is None and not w1.driving:
                        break
                    await asyncio.sleep(0.02)
        return run.id, root

    return asyncio.run(main())


def test_a_model_call_under_a_provider_switch_names_the_switch_and_how_to_clear_it(tmp_path: Path) -> None:
    """A new user's run-through (fifth session): with ``podium killswitch set provider scripted
    --mode pause``, setting it said "(pause)" and a run's model call failed with "provider
    'scripted' is switched off (incident 5)": nothing said that a provider's switch refuses calls
    whatever its mode (the run does not park), which switch it was, or how to clear it. Both say
    so now."""
    (tmp_path / "flows.py").write_text(
        "import podium\nfrom podium import ai\nfrom podium.models.testing import ScriptedModel\n\n"
        "wf = podium.Workflow('talk')\n\n@wf.step\nasync def answer(ctx: podium.StepContext, input):\n"
        "    return (await ai.llm(ctx, 'hello', model=ScriptedModel(default='hi'))).text\n"
    )
    set_ = cli(tmp_path, "killswitch", "set", "provider", "scripted", "--mode", "pause", "-m", "incident 5").stdout
    assert "switched off provider:scripted (pause)" in set_ and "refused, not parked" in set_, set_
    failed = cli(tmp_path, "run", "flows:wf", "--input", "{}", check=1).stderr
    assert "kill switch provider:scripted (pause: incident 5, by local)" in failed, failed
    assert "refuses calls whatever its mode" in failed and "step 'answer' made no call" in failed, failed
    assert "podium killswitch clear provider scripted" in failed, failed
    cli(tmp_path, "killswitch", "clear", "provider", "scripted")
    cli(tmp_path, "killswitch", "set", "provider", "--all", "-m", "incident 6")
    failed = cli(tmp_path, "run", "flows:wf", "--input", "{}", check=1).stderr
    assert "kill switch provider:* (pause: incident 6" in failed and "podium killswitch clear provider --all" in failed, failed


def test_runs_show_quotes_the_approval_name_in_the_command_it_suggests(tmp_path: Path) -> None:
    """Seventh review: with several approvals open, ``runs show`` suggests ``podium approvals approve
    RUN --request NAME`` with the name as the run wrote it, unquoted: a name with a space, ``$(...)``
    or ``;`` (a step's own ``name=``), or a map item's ``approval:step[3]`` (a glob: zsh refuses it),
    was not one argument, or ran as a command, when pasted into a shell. And rich read the step
    name in ``approval:two: second`` as the emoji code ``:two:`` (printed as a keycap 2)."""
    import shlex

    (tmp_path / "flows.py").write_text(
        "import podium\nwf = podium.Workflow('twice')\n\n"
        "@wf.step\nasync def one(ctx: podium.StepContext, input):\n"
        "    return await ctx.approval(input, title='first', name='refund for $(touch pwned); id')\n\n"
        "@wf.step\nasync def two(ctx: podium.StepContext, input):\n"
        "    return await ctx.approval(input, title='second')\n"
    )
    cli(tmp_path, "run", "flows:wf", "--input", "{}", check=3)
    rid = json.loads(cli(tmp_path, "runs", "--json").stdout.splitlines()[0])["id"]
    shown = cli(tmp_path, "runs", "show", rid).stdout
    suggested = " ".join(shown.split("decide with: ", 1)[1].split("  or  ", 1)[0].split())
    words = shlex.split(suggested)
    names = {json.loads(line)["name"] for line in cli(tmp_path, "approvals", "--json").stdout.splitlines()}
    assert words[:4] == ["podium", "approvals", "approve", rid] and words[4] == "--request", suggested
    assert len(words) == 6 and words[5] in names, suggested
    assert "approval:two: second" in shown, shown


PARENT_AND_CHILD = (
    "import asyncio, pathlib\n"
    "import podium\n"
    "child = podium.Workflow('payout')\n\n"
    "@child.step\n"
    "async def check(input):\n"
    "    pathlib.Path('checking').write_text('')\n"
    "    while not pathlib.Path('go').exists():\n"
    "        await asyncio.sleep(0.05)\n"
    "    return input\n\n"
    "@child.step\n"
    "async def pay(check):\n"
    "    return {'paid': check}\n\n"
    "wf = podium.Workflow('month-end')\n"
    "wf.subworkflow('payouts', child, input=lambda input: input)\n"
)


def test_podium_run_says_which_switch_parked_a_child_its_run_waits_for(tmp_path: Path) -> None:
    """A new user's run-through (sixth session): ``podium run`` of a parent whose child a kill
    switch parked kept printing its progress and waited, saying nothing (``podium runs show CHILD``
    said it). It now says, while it waits, which switch parks which child run and the command that
    clears it; once cleared, the run finishes in the same command."""
    (tmp_path / "flows.py").write_text(PARENT_AND_CHILD)
    env = {**os.environ, "PODIUM_DB": f"sqlite:///{tmp_path}/gov.db", "COLUMNS": "200"}
    env.pop("PODIUM_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from podium.cli import main; main()", "run", "flows:wf", "--input", "7"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(600):
            if (tmp_path / "checking").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert (tmp_path / "checking").exists(), proc.communicate(timeout=10)
        cli(tmp_path, "killswitch", "set", "workflow", "month-end", "-m", "incident 12")
        time.sleep(2)  # the engine in the command reads the switches every half second
        (tmp_path / "go").write_text("")
        children: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while not children and time.monotonic() < deadline:  # the child parks at its next step boundary
            rows = [json.loads(x) for x in cli(tmp_path, "runs", "--json").stdout.splitlines()]
            children = [r for r in rows if r["workflow"] == "payout" and r["status"] == "waiting"]
        assert children, rows
        [parent] = [r["id"] for r in rows if r["workflow"] == "month-end"]
        # runs show PARENT said nothing of the child (a new user's run-through, seventh session)
        shown = " ".join(cli(tmp_path, "runs", "show", parent).stdout.split())
        time.sleep(3)  # the command notices within a second or two
        cli(tmp_path, "killswitch", "clear", "workflow", "month-end", "--no-wait")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    kid = children[0]["id"]
    said = " ".join(out.split())
    assert f"waits for its child run {kid}" in said, out
    assert "parked by kill switch workflow:month-end (incident 12, by local)" in said, out
    assert "podium killswitch clear workflow month-end" in said, out
    assert "completed" in said and '"paid": 7' in said, out
    assert f"run {parent} waits for its child run {kid} (step payouts): run {kid} is parked by kill switch workflow:month-end" in shown, shown
    assert "podium killswitch clear workflow month-end" in shown, shown


def test_a_run_parked_before_starting_a_child_of_a_paused_workflow_names_that_switch(tmp_path: Path) -> None:
    """Found beside the above: a run whose step may not start a child (the child's workflow is
    paused: the step waits to start it) was told it was parked "by a kill switch, and no kill
    switch that parks it is on now", with a clear command for its own workflow that does nothing.
    The switch on a workflow is named as one that may park it (a child it starts is of another)."""
    (tmp_path / "flows.py").write_text(PARENT_AND_CHILD)
    (tmp_path / "go").write_text("")
    cli(tmp_path, "killswitch", "set", "workflow", "payout", "-m", "bank incident")
    parked = " ".join(cli(tmp_path, "run", "flows:wf", "--input", "8", check=3).stdout.split())
    assert "no kill switch that parks it is on now" not in parked, parked
    assert "workflow:payout (bank incident, by local)" in parked, parked
    assert "podium killswitch clear workflow payout" in parked, parked


def test_approve_with_the_number_the_inbox_showed_refuses_a_request_asked_since(tmp_path: Path) -> None:
    """Fifteenth session (the surfaces review's left item): the CLI can name the request it was
    shown, as the API and MCP can (``request``): ``--seq`` with the inbox's ``#``; a number that is
    not the open request's decides nothing and says which one is open."""
    (tmp_path / "flows.py").write_text(FLOW)
    cli(tmp_path, "run", "flows:wf", "--input", '{"amount": 80}', check=3)
    rid = json.loads(cli(tmp_path, "runs", "--json").stdout.splitlines()[0])["id"]
    seq = json.loads(cli(tmp_path, "approvals", "--json").stdout.splitlines()[0])["seq"]
    assert f" {seq} " in cli(tmp_path, "approvals").stdout  # the # column
    wrong = cli(tmp_path, "approvals", "approve", rid, "--seq", str(seq + 7), "-m", "stale card", check=2).stderr
    assert f"asked as request {seq + 7}" in wrong and f"the open one is request {seq}" in wrong, wrong
    assert len(cli(tmp_path, "approvals", "--json").stdout.splitlines()) == 1  # nothing decided
    assert "approved" in cli(tmp_path, "approvals", "approve", rid, "--seq", str(seq), "-m", "fine").stdout
    assert cli(tmp_path, "approvals", "--json").stdout.strip() == ""

"""Policies from the command line: podium policy list / show / set / clear, file errors, permissions,
and a policy set by the CLI enforced on a run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from store_helpers import made_store

FLOW = (
    "import podium\n"
    "from podium import ai\n"
    "from podium.models.testing import ScriptedModel\n\n"
    "model = ScriptedModel(default='Invest now: guaranteed returns of 20%!')\n"
    "wf = podium.Workflow('answerer')\n\n"
    "@wf.step\n"
    "async def reply(ctx: podium.StepContext, input):\n"
    "    return (await ai.llm(ctx, f'Reply to: {input}', model=model)).text\n"
)

FULL_POLICY = """\
allowed_tools: [lookup_order, search_kb]
allowed_providers: [local]
max_run_tokens: 20_000
max_run_cost: 0.5
max_daily_tokens: 1000000
max_daily_cost: 20
max_entity_tokens: 50000
max_entity_cost: 1.0
entity_field: customer_id
on_exceed: approval
redact: [prompts, payloads]
pii_local_only: true
banned: ["guaranteed returns", 're:\\bwire\\s+money\\b']
tone: [hostile]
tone_threshold: 0.7
on_violation: approval
"""


def cli(tmp: Path, *args: str, token: str | None = None, check: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_DB": f"sqlite:///{tmp}/pol.db", "COLUMNS": "200"}
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


def shown(tmp: Path, workflow: str, **kw: str) -> dict:
    return json.loads(cli(tmp, "policy", "show", workflow, "--json", **kw).stdout)


def test_set_from_flags_show_list_and_clear(tmp_path: Path) -> None:
    made_store(f"sqlite:///{tmp_path}/pol.db")
    assert "no policies set" in cli(tmp_path, "policy", "list").stdout
    out = cli(
        tmp_path, "policy", "set", "support", "--allow-tool", "lookup_order", "--allow-tool", "search_kb",
        "--approve-tool", "refund", "--allow-provider", "local", "--max-run-tokens", "20000", "--max-run-cost", "0.5",
        "--max-daily-tokens", "100000", "--max-daily-cost", "5", "--max-entity-tokens", "3000",
        "--max-entity-cost", "0.25", "--entity-field", "customer.id", "--on-exceed", "approval",
        "--redact", "prompts", "--redact", "outputs", "--pii-local-only", "--ban", "wire money",
        "--tone", "hostile", "--tone-threshold", "0.8", "--on-violation", "approval",
        "--allow-connector", "crm.getContact", "--allow-connector", "erp", "--approve-connector", "erp.createOrder",
        "--max-tool-calls", "8",
    ).stdout  # fmt: skip
    assert "policy of support:" in out and "max_run_tokens=20000" in out
    assert shown(tmp_path, "support") == {
        "allowed_tools": ["lookup_order", "search_kb"],
        "allowed_providers": ["local"],
        "approve_tools": ["refund"],
        "allowed_connectors": ["crm.getContact", "erp"],
        "approve_connectors": ["erp.createOrder"],
        "max_tool_calls": 8,
        "max_run_tokens": 20000,
        "max_run_cost": 0.5,
        "max_daily_tokens": 100000,
        "max_daily_cost": 5.0,
        "max_entity_tokens": 3000,
        "max_entity_cost": 0.25,
        "entity_field": "customer.id",
        "on_exceed": "approval",
        "redact": ["prompts", "outputs"],
        "pii_local_only": True,
        "banned": ["wire money"],
        "tone": ["hostile"],
        "tone_threshold": 0.8,
        "on_violation": "approval",
    }
    readable = cli(tmp_path, "policy", "show", "support").stdout
    assert "lookup_order, search_kb" in readable and re.search(r"^max_run_tokens +20000  \*$", readable, re.M)

    # '*' is the default: shown (and said so) for a workflow without its own policy
    cli(tmp_path, "policy", "set", "*", "--allow-provider", "local", "--allow-provider", "ollama")
    other = cli(tmp_path, "policy", "show", "billing")
    assert "the default '*' applies" in other.stdout and "local, ollama" in other.stdout
    as_json = cli(tmp_path, "policy", "show", "billing", "--json")
    assert json.loads(as_json.stdout)["allowed_providers"] == ["local", "ollama"]
    assert "the default '*' applies" in as_json.stderr

    listing = cli(tmp_path, "policy", "list").stdout.splitlines()
    assert listing[0] == "*\tallowed_providers=local,ollama"
    assert listing[1].startswith("support\tallowed_tools=lookup_order,search_kb allowed_providers=local")

    # a set without --merge replaces the whole policy
    cli(tmp_path, "policy", "set", "support", "--max-run-tokens", "10")
    assert shown(tmp_path, "support")["allowed_tools"] is None

    assert "the default '*' now applies" in cli(tmp_path, "policy", "clear", "support").stdout
    assert "nothing to clear" in cli(tmp_path, "policy", "clear", "support").stdout
    assert shown(tmp_path, "support")["allowed_providers"] == ["local", "ollama"]  # falls back to '*'
    cli(tmp_path, "policy", "clear", "*")
    assert "no policy applies to support" in cli(tmp_path, "policy", "show", "support").stdout
    assert cli(tmp_path, "policy", "show", "support", "--json").stdout.strip() == "null"


def test_set_from_a_yaml_file_with_every_field_and_merge(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(FULL_POLICY)
    cli(tmp_path, "policy", "set", "support", "--file", "policy.yaml")
    policy = shown(tmp_path, "support")
    assert policy["max_run_tokens"] == 20000 and policy["max_daily_cost"] == 20.0
    assert policy["banned"] == ["guaranteed returns", "re:\\bwire\\s+money\\b"]
    assert policy["pii_local_only"] is True and policy["tone_threshold"] == 0.7

    # --merge keeps every other field; flags win over the file; list flags replace the list
    cli(tmp_path, "policy", "set", "support", "--merge", "--max-run-tokens", "500", "--ban", "crypto")
    merged = shown(tmp_path, "support")
    assert merged == {**policy, "max_run_tokens": 500, "banned": ["crypto"]}
    cli(tmp_path, "policy", "set", "support", "--merge", "--unset", "banned", "--unset", "allowed_tools")
    assert shown(tmp_path, "support") == {**merged, "banned": [], "allowed_tools": None}

    # a JSON file, e.g. the output of show --json, round-trips
    (tmp_path / "p.json").write_text(cli(tmp_path, "policy", "show", "support", "--json").stdout)
    cli(tmp_path, "policy", "set", "copy", "-f", "p.json")
    assert shown(tmp_path, "copy") == shown(tmp_path, "support")

    # --merge on a workflow without its own policy starts from the default '*'
    cli(tmp_path, "policy", "set", "*", "--allow-provider", "local")
    out = cli(tmp_path, "policy", "set", "billing", "--merge", "--max-run-cost", "1").stdout
    assert "started from the default '*'" in out
    assert shown(tmp_path, "billing")["allowed_providers"] == ["local"]
    note = cli(tmp_path, "policy", "set", "refunds", "--max-run-cost", "1").stdout
    assert "replaces the default '*'" in note


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("max_run_tokens: 100\nmax_tokens: 5\n", "p.yaml", "unknown policy field(s) 'max_tokens' (did you mean 'max_run_tokens'?)"),
        ("banned: [a\nmax_run_cost: 1\n", "p.yaml", "not valid YAML (line 2"),
        ('{"banned": [1,}', "p.json", "not valid JSON (line 1"),
        ("max_run_tokens: lots\n", "p.yaml", "field 'max_run_tokens' must be a whole number"),
        ("max_run_tokens: 2.5\n", "p.yaml", "field 'max_run_tokens' must be a whole number"),
        ("redact: prompts\n", "p.yaml", "field 'redact' must be a list of strings, got 'prompts'; write it like  redact: [prompts, payloads]"),
        ("pii_local_only: maybe\n", "p.yaml", "field 'pii_local_only' must be true or false"),
        ("max_daily_cost: -1\n", "p.yaml", "field 'max_daily_cost' is a budget and cannot be negative"),
        ("max_entity_tokens: -10\n", "p.yaml", "field 'max_entity_tokens' is a budget and cannot be negative"),
        ("max_run_cost: .inf\n", "p.yaml", "field 'max_run_cost' must be a finite number"),
        ("tone_threshold: 1.5\n", "p.yaml", "field 'tone_threshold' is a confidence between 0 and 1"),
        ("tone: [angry]\n", "p.yaml", "unknown tone(s) ['angry']"),
        ("on_exceed: ask\n", "p.yaml", "on_exceed must be 'stop' or 'approval'"),
        ("redact: [everything]\n", "p.yaml", "redact: unknown target(s) ['everything']"),
        ("banned: ['re:(']\n", "p.yaml", "is not a valid regular expression"),
        ("", "p.yaml", "the file is empty"),
        ("- a\n- b\n", "p.yaml", "a policy file holds a mapping of fields"),
    ],
)  # fmt: skip
def test_a_bad_policy_file_is_one_clear_line(tmp_path: Path, text: str, name: str, expected: str) -> None:
    (tmp_path / name).write_text(text)
    err = cli(tmp_path, "policy", "set", "support", "--file", name, check=2).stderr
    assert err.startswith(f"error: {name}: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "no policies set" in cli(tmp_path, "policy", "list").stdout  # nothing was stored


def test_bad_flags_and_missing_file(tmp_path: Path) -> None:
    assert (
        "cannot read policy file 'nope.yaml'"
        in cli(tmp_path, "policy", "set", "a", "-f", "nope.yaml", check=2).stderr
    )
    assert (
        "-3 is not in the range"
        in cli(tmp_path, "policy", "set", "a", "--max-run-tokens", "-3", check=2).stderr
    )
    assert (
        "not in the range 0<=x<=1"
        in cli(tmp_path, "policy", "set", "a", "--tone-threshold", "2", check=2).stderr
    )
    assert "unknown tone(s)" in cli(tmp_path, "policy", "set", "a", "--tone", "angry", check=2).stderr
    assert "nothing to set" in cli(tmp_path, "policy", "set", "a", check=2).stderr
    assert (
        "not a policy field"
        in cli(tmp_path, "policy", "set", "a", "--merge", "--unset", "nope", check=2).stderr
    )


def test_changing_a_policy_needs_policies_write(tmp_path: Path) -> None:
    root = cli(tmp_path, "users", "add", "root", "--role", "admin", "--token").stdout.strip()
    cli(tmp_path, "users", "add", "vera", "--role", "viewer", token=root)
    vera = cli(tmp_path, "tokens", "create", "vera", token=root).stdout.strip()
    cli(tmp_path, "policy", "set", "support", "--max-run-tokens", "100", token=root)

    for args in (
        ("set", "support", "--max-run-tokens", "5"),
        ("set", "other", "--merge", "--ban", "x"),
        ("clear", "support"),
    ):
        err = cli(tmp_path, "policy", *args, token=vera, check=2).stderr
        assert "vera (roles: viewer) may not policies.write" in err, err
    assert shown(tmp_path, "support", token=vera)["max_run_tokens"] == 100  # viewers may read
    assert cli(tmp_path, "policy", "list", token=vera).stdout.startswith("support\t")
    assert "needs an API token" in cli(tmp_path, "policy", "list", check=2).stderr

    exported = [json.loads(line) for line in cli(tmp_path, "audit", "export", token=root).stdout.splitlines()]
    assert [e["data"]["policy"]["max_run_tokens"] for e in exported if e["action"] == "policy.set"] == [100]
    assert any(
        e["action"] == "access.denied" and e["data"].get("permission") == "policies.write" for e in exported
    )


def test_a_policy_set_by_the_cli_is_enforced_on_a_run(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    cli(tmp_path, "policy", "set", "answerer", "--ban", "guaranteed returns")
    failed = cli(tmp_path, "run", "flows:wf", "--input", '"should I invest?"', check=1)
    assert "banned content: 'guaranteed returns'" in failed.stdout + failed.stderr
    cli(tmp_path, "policy", "clear", "answerer")
    ok = cli(tmp_path, "run", "flows:wf", "--input", '"again"', "-q").stdout
    assert "guaranteed returns of 20%" in ok


def test_an_agents_policy_is_shown_and_merged_from_agent_star_never_from_star(tmp_path: Path) -> None:
    """Before: `policy show agent:x` said "no policy applies ... no default '*'" while `agent:*` (the
    default for agents, docs/governance.md) was set, and showed the workflows' `*` when it was set;
    `policy set agent:x --merge` copied `*`'s budgets into the agent's own policy."""
    cli(tmp_path, "policy", "set", "*", "--max-run-tokens", "500")
    cli(tmp_path, "policy", "set", "agent:*", "--allow-tool", "lookup", "--max-tool-calls", "3")
    out = cli(tmp_path, "policy", "show", "agent:junior").stdout
    assert "the default 'agent:*' applies" in out and re.search(r"^max_tool_calls +3  \*$", out, re.M)
    assert shown(tmp_path, "agent:junior")["max_run_tokens"] is None
    merged = cli(tmp_path, "policy", "set", "agent:junior", "--merge", "--max-tool-calls", "2").stdout
    assert "started from the default 'agent:*'" in merged
    own = shown(tmp_path, "agent:junior")
    assert (own["allowed_tools"], own["max_tool_calls"], own["max_run_tokens"]) == (["lookup"], 2, None)
    assert "the default 'agent:*' now applies" in cli(tmp_path, "policy", "clear", "agent:junior").stdout
    cli(tmp_path, "policy", "clear", "agent:*")
    gone = cli(tmp_path, "policy", "show", "agent:junior").stdout
    assert "no default 'agent:*'" in gone and "the workflow's policy is allowed" in gone
    assert shown(tmp_path, "billing")["max_run_tokens"] == 500  # workflows keep '*'


def test_a_connector_entry_that_matches_no_call_is_refused(tmp_path: Path) -> None:
    """Before: `--approve-connector 'crm.*'` was stored and matched no call, so nobody was asked."""
    bad = cli(tmp_path, "policy", "set", "pay", "--approve-connector", "crm.*", check=2)
    assert "'crm.*' is not a connector name or NAME.OPERATION" in bad.stderr and "'crm' alone covers" in bad.stderr
    cli(tmp_path, "policy", "set", "pay", "--allow-connector", "crm.update.Contact", check=2)
    assert cli(tmp_path, "policy", "show", "pay", "--json").stdout.strip() == "null"


def test_a_run_parked_by_a_kill_switch_says_so(tmp_path: Path) -> None:
    """Before: `podium run` said the run waited "until a signal or timer wakes it" and to wake it
    with `podium runs signal`, which refuses the kill switch's signal; the way on is to clear it."""
    (tmp_path / "flow.py").write_text(
        "import podium\nwf = podium.Workflow('judge')\n\n"
        "@wf.step(kind='llm')\nasync def judge(ctx, input):\n    return input\n"
    )
    cli(tmp_path, "killswitch", "set", "kind", "llm", "-m", "incident 7")
    out = cli(tmp_path, "run", "flow.py:wf", "--input", '"x"', check=3).stdout
    assert "parked by kill switch kind:llm (incident 7" in out and "podium killswitch clear kind llm" in out
    assert "runs signal" not in out


def test_in_a_store_with_users_set_and_show_say_that_star_holds_a_workflow_not_deployed(tmp_path: Path) -> None:
    """A new user's run-through: in a store with users, ``policy set drafts`` said "this replaces
    the default '*' for drafts (policies do not combine)" and ``policy show drafts`` showed its own
    policy as the one in force, while a run of ``drafts`` not deployed is held by ``*`` as well
    (docs/governance.md, "Which workflow a policy covers"): its run was refused a provider its own
    policy allows. Both say so now, with the command that deploys it; once deployed, the note goes."""
    token = next(w for w in cli(tmp_path, "users", "add", "root", "--role", "admin", "--token").stdout.split() if w.startswith("pod_"))
    cli(tmp_path, "policy", "set", "*", "--allow-provider", "local", token=token)
    out = cli(tmp_path, "policy", "set", "drafts", "--allow-provider", "openai", token=token).stdout
    text = " ".join(out.split())
    assert "do not combine" not in text and "not deployed" in text, text
    assert "'*' as well" in text and "podium workflows deploy" in text, text
    show = " ".join(cli(tmp_path, "policy", "show", "drafts", token=token).stdout.split())
    assert "not deployed" in show and "'*' as well" in show, show
    (tmp_path / "drafts.yaml").write_text("name: drafts\nsteps:\n  - id: w\n    uses: set\n    with: {text: v1}\n")
    cli(tmp_path, "workflows", "deploy", "drafts.yaml", token=token)
    assert "not deployed" not in cli(tmp_path, "policy", "show", "drafts", token=token).stdout
    again = cli(tmp_path, "policy", "set", "drafts2", "--allow-provider", "openai", token=token).stdout
    assert "not deployed" in again
    local = tmp_path / "local"
    local.mkdir()
    cli(local, "policy", "set", "*", "--allow-provider", "local")
    note = cli(local, "policy", "set", "drafts", "--max-run-cost", "1").stdout  # local mode: no users
    assert "replaces the default '*'" in note and "not deployed" not in note, note

"""Policy commands: list, show, set (from a YAML/JSON file and/or flags) and clear the policy of a
workflow, or of ``*`` (the default for every workflow without its own)."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import click

from ._app import (
    EXIT_OK,
    cli,
    console,
    db_option,
    emit_json,
    fail,
    json_option,
    make_client,
    requires,
    run_async,
)

DEFAULT = "*"


def _default_of(name: str) -> str | None:
    """The default policy over ``name``: ``agent:*`` for an agent's key (``agent:NAME``), ``*`` for a
    workflow (None for the defaults themselves). An agent is never under ``*`` (the workflows')."""
    if name.startswith("agent:"):
        return None if name == "agent:*" else "agent:*"
    return None if name == DEFAULT else DEFAULT

# What each kind of field (by its annotation in podium.governance.policy.Policy) must hold, with an example.
_KINDS: dict[str, tuple[str, str]] = {
    "list[str] | None": ("a list of strings (or null for 'any')", "[a, b]"),
    "list[str]": ("a list of strings", "[a, b]"),
    "int | None": ("a whole number (or null for 'no limit')", "20000"),
    "float | None": ("a number (or null for 'no limit')", "0.5"),
    "str | None": ("a string (or null)", "customer_id"),
    "str": ("a string", "stop"),
    "bool": ("true or false", "true"),
    "float": ("a number", "0.6"),
}


_EXAMPLES = {
    "allowed_tools": "[lookup_order, search_kb]",
    "approve_tools": "[refund]",
    "allowed_connectors": "[crm.getContact, erp]",
    "approve_connectors": "[crm.deleteContact]",
    "allowed_providers": "[local]",
    "redact": "[prompts, payloads]",
    "banned": '["guaranteed returns"]',
    "tone": "[hostile]",
    "on_exceed": "stop",
    "on_violation": "block",
}


def _fields() -> dict[str, dataclasses.Field[Any]]:
    from podium.governance.policy import Policy

    return {f.name: f for f in dataclasses.fields(Policy)}


def _type_problem(name: str, value: Any, kind: str) -> str | None:
    """Why ``value`` cannot be field ``name`` of annotation ``kind`` (None if it can)."""
    if value is None and kind.endswith("| None"):
        return None
    base = kind.removesuffix(" | None")
    ok = True
    if base == "list[str]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif base == "str":
        ok = isinstance(value, str)
    elif base == "bool":
        ok = isinstance(value, bool)
    if ok:
        return None
    what, example = _KINDS.get(kind, (kind, "..."))
    example = _EXAMPLES.get(name, example)
    return f"field {name!r} must be {what}, got {value!r}; write it like  {name}: {example}"


def _range_problems(data: dict[str, Any]) -> list[str]:
    """Budgets must be finite and not negative; tone_threshold lies in 0..1.

    ``Policy`` checks these too; checked here first so the message names the file's field and the fix."""
    problems = []
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"field {name!r} must be a finite number, got {value}")
        elif name.startswith("max_") and value < 0:
            problems.append(
                f"field {name!r} is a budget and cannot be negative (got {value}); use 0 or more, or null for no limit"
            )
        elif name == "tone_threshold" and not 0 <= value <= 1:
            problems.append(
                f"field 'tone_threshold' is a confidence between 0 and 1, got {value}; e.g. tone_threshold: 0.6"
            )
    return problems


def _build(data: dict[str, Any], source: str) -> Any:
    """A Policy from ``data``; any problem ends the command with one line naming ``source``."""
    from podium.errors import ConfigError
    from podium.governance.policy import Policy

    known = _fields()
    if set(data) - set(known):
        try:
            Policy.from_dict(data)  # raises its clear "unknown policy field(s) ... did you mean" error
        except ConfigError as exc:
            fail(f"{source}: {exc}")
    for name, value in data.items():
        problem = _type_problem(name, value, str(known[name].type))
        if problem:
            fail(f"{source}: {problem}")
    problems = _range_problems(data)
    if problems:
        fail(f"{source}: {'; '.join(problems)}")
    try:
        return Policy.from_dict({k: float(v) if str(known[k].type).startswith("float") and isinstance(v, int) else v
                                 for k, v in data.items()})  # fmt: skip
    except (ConfigError, TypeError, ValueError) as exc:
        fail(f"{source}: {exc}")


def _read_file(path: str) -> dict[str, Any]:
    """The mapping in a policy file (YAML, or JSON for .json; ``-`` reads stdin)."""
    name = "stdin" if path == "-" else path
    try:
        with click.open_file(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        fail(
            f"{name}: a policy file must be UTF-8 text (YAML or JSON), but byte {exc.start} is not "
            f"({exc.reason}); name the policy file, e.g. --file policy.yaml"
        )
    except OSError as exc:
        fail(f"cannot read policy file {name!r}: {exc.strerror}")
    data: Any
    if path.endswith(".json"):
        from podium.governance.limits import JsonProblem, loads

        try:
            data = loads(text)
        except JsonProblem as exc:
            fail(f"{name}: {exc}")
        except json.JSONDecodeError as exc:
            fail(
                f'{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix the file, e.g. {{"banned": ["wire money"]}}'
            )
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except RecursionError:
            fail(f"{name}: the YAML is nested too deeply; a policy is a flat mapping of fields")
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            fail(
                f"{name}: not valid YAML{where}: {problem}; fix the file, e.g. 'max_run_tokens: 20000' on its own line"
            )
    if data is None and text.strip():  # `null`: what `policy show --json` prints where no policy applies
        fail(
            f"{name}: the file holds null (no policy: what 'podium policy show --json' prints where none applies); "
            "write the policy's fields, e.g. 'banned: [wire money]', or remove the policy with podium policy clear"
        )
    if data is None:
        fail(f"{name}: the file is empty; write the policy's fields, e.g. 'banned: [wire money]'")
    if not isinstance(data, dict):
        fail(
            f"{name}: a policy file holds a mapping of fields (allowed_tools, max_run_tokens, ...), got {type(data).__name__}"
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        fail(f"{name}: field names must be strings, got {bad_keys[0]!r}")
    return data


def _plain(policy: Any) -> dict[str, Any]:
    return dataclasses.asdict(policy)


def _summary(policy: Any) -> str:
    """The fields that differ from their defaults, compactly (``-`` if none)."""
    from podium.governance.policy import Policy

    defaults = _plain(Policy())
    parts = []
    for name, value in _plain(policy).items():
        if value == defaults[name]:
            continue
        shown = ",".join(value) if isinstance(value, list) else value
        parts.append(f"{name}={shown if shown != '' else '(none)'}")
    return " ".join(parts) or "- (defaults: anything allowed)"


async def _held_by_default_too(c: Any, workflow: str, policies: dict[str, Any]) -> str | None:
    """A note when runs of ``workflow`` are under ``*`` as well as its own policy: a store with users
    where no version of it is deployed (docs/governance.md, "Which workflow a policy covers")."""
    from podium.engine.versions import ACTIVE

    if workflow == "*" or ":" in workflow or "*" not in policies:
        return None
    await c.governance.refresh()  # reads whether the store has users
    if not c.governance.users_exist:
        return None
    if await c.store.kv_get(ACTIVE, workflow) is not None:
        return None
    return (
        f"note: {workflow} is not deployed, and this store has users, so its runs are held by the default "
        f"'*' as well as by its own policy (a call passes only if both allow it: podium policy show '*'); "
        f"to run it under its own policy alone, someone with workflows.deploy deploys it: "
        f"podium workflows deploy FILE"
    )


@cli.group()
def policy() -> None:
    """Per-workflow policies: allowed tools, connectors and providers, budgets, redaction, output checks.

    A workflow's own policy replaces the default '*' (they do not combine) for the workflow deployed
    under its name; in a store with users, a run of a definition not deployed is held by '*' as well
    (docs/governance.md, "Which workflow a policy covers"). Changing one needs policies.write.
    """


@policy.command("list")
@json_option
@db_option
@run_async
@requires("workflows.read", lambda kw: "policies")
async def policy_list(as_json: bool, db: str | None) -> int:
    """Every policy set, by workflow ('*' is the default for all)."""
    async with make_client(db, recover=False) as c:
        await c.authorize("workflows.read", "policies")
        policies = await c.policies()
    if as_json:
        emit_json({"workflow": name, "policy": policies[name]} for name in sorted(policies))
        return EXIT_OK
    if not policies:
        console().print(
            "no policies set; set one with: podium policy set WORKFLOW ...", highlight=False, markup=False
        )
    for name in sorted(policies):
        click.echo(f"{name}\t{_summary(policies[name])}")
    return EXIT_OK


@policy.command("show")
@click.argument("workflow")
@click.option("--json", "as_json", is_flag=True, help="Print the policy as JSON (usable with set --file).")
@db_option
@run_async
@requires("workflows.read", lambda kw: f"workflow:{kw['workflow']}")
async def policy_show(workflow: str, as_json: bool, db: str | None) -> int:
    """The policy in force for WORKFLOW (its own, else the default '*'; for agent:NAME, 'agent:*')."""
    async with make_client(db, recover=False) as c:
        await c.authorize("workflows.read", f"workflow:{workflow}")
        policies = await c.policies()
        also = await _held_by_default_too(c, workflow, policies) if workflow in policies else None
    default = _default_of(workflow)
    source = workflow if workflow in policies else default if default in policies else None
    what = "the workflow's policy" if workflow.startswith("agent:") else "anything"
    note = (
        None if source == workflow
        else f"{workflow} has no policy of its own: the default {default!r} applies" if source
        else f"no policy applies to {workflow} (none of its own, no default {default!r}): {what} is allowed"
        if default
        else f"no default {workflow!r} is set"
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(_plain(policies[source]) if source else None, indent=2))
        if note:
            console(stderr=True).print(note, highlight=False, markup=False)
        return EXIT_OK
    if note:
        console().print(note, highlight=False, markup=False)
    if source is None:
        return EXIT_OK
    from podium.governance.policy import Policy

    defaults = _plain(Policy())
    width = max(len(n) for n in defaults)
    for name, value in _plain(policies[source]).items():
        if value is None:
            shown = (
                "any"
                if name.startswith("allowed_")
                else "the run's tenant"
                if name == "entity_field"
                else "no limit"
            )
        elif isinstance(value, list):
            shown = ", ".join(value) if value else ("none" if name.startswith("allowed_") else "-")
        else:
            shown = json.dumps(value) if isinstance(value, bool) else str(value)
        mark = "" if value == defaults[name] else "  *"
        click.echo(f"{name.ljust(width)}  {shown}{mark}")
    console().print(
        f"(* differs from the default; policy of {source!r})", highlight=False, markup=False, style="dim"
    )
    if also:
        console().print(also, highlight=False, markup=False)
    return EXIT_OK


@policy.command("set")
@click.argument("workflow")
@click.option(
    "--file", "-f", "file", metavar="FILE", help="A YAML or JSON file of policy fields ('-': stdin)."
)
@click.option(
    "--merge", is_flag=True, help="Start from the policy in force (its own, else '*', or 'agent:*' for agent:NAME), not from defaults."
)
@click.option(
    "--allow-tool", "allowed_tools", multiple=True, metavar="TOOL", help="A tool it may call (repeatable)."
)
@click.option(
    "--approve-tool",
    "approve_tools",
    multiple=True,
    metavar="TOOL",
    help="A tool a person must approve before each call (repeatable).",
)
@click.option(
    "--allow-provider",
    "allowed_providers",
    multiple=True,
    metavar="PROVIDER",
    help="A model provider it may call (repeatable).",
)
@click.option(
    "--allow-connector",
    "allowed_connectors",
    multiple=True,
    metavar="NAME[.OPERATION]",
    help="A connector (all its operations) or one operation it may call, e.g. crm.getContact (repeatable).",
)
@click.option(
    "--approve-connector",
    "approve_connectors",
    multiple=True,
    metavar="NAME[.OPERATION]",
    help="A connector operation a person must approve before each call (repeatable).",
)
@click.option(
    "--max-tool-calls", type=click.IntRange(min=0), help="Tool calls one agent run may make (below the agent's own)."
)
@click.option("--max-run-tokens", type=click.IntRange(min=0), help="Tokens one run may spend.")
@click.option("--max-run-cost", type=click.FloatRange(min=0), help="US dollars one run may spend.")
@click.option("--max-daily-tokens", type=click.IntRange(min=0), help="Tokens all runs may spend per UTC day.")
@click.option(
    "--max-daily-cost", type=click.FloatRange(min=0), help="US dollars all runs may spend per UTC day."
)
@click.option(
    "--max-entity-tokens", type=click.IntRange(min=0), help="Tokens one entity's runs may spend per day."
)
@click.option(
    "--max-entity-cost", type=click.FloatRange(min=0), help="US dollars one entity's runs may spend per day."
)
@click.option("--entity-field", metavar="FIELD", help="The input field naming the entity (dotted path).")
@click.option(
    "--on-exceed", type=click.Choice(["stop", "approval"]), help="Over budget: fail, or ask a person."
)
@click.option(
    "--redact",
    multiple=True,
    type=click.Choice(["prompts", "outputs", "payloads"]),
    help="Redact PII there (repeatable).",
)
@click.option(
    "--pii-local-only/--no-pii-local-only", default=None, help="Prompts with PII only go to local models."
)
@click.option(
    "--ban",
    "banned",
    multiple=True,
    metavar="WORD",
    help="A word, phrase or 're:REGEX' answers must not contain (repeatable).",
)
@click.option(
    "--tone", multiple=True, metavar="TONE", help="A tone answers must not have, e.g. hostile (repeatable)."
)
@click.option(
    "--tone-threshold", type=click.FloatRange(0, 1), help="Confidence at which a tone counts (0..1)."
)
@click.option(
    "--on-violation", type=click.Choice(["block", "approval"]), help="A failed answer: fail, or ask a person."
)
@click.option(
    "--unset",
    "unset",
    multiple=True,
    metavar="FIELD",
    help="Reset a field to its default (with --merge; repeatable).",
)
@db_option
@run_async
@requires("policies.write", lambda kw: f"workflow:{kw['workflow']}")
async def policy_set(
    workflow: str, file: str | None, merge: bool, unset: tuple[str, ...], db: str | None, **flags: Any
) -> int:
    """Set the policy of WORKFLOW ('*': the default for every workflow without its own).

    Fields come from --file and the flags (flags win); list flags replace the whole list. Without
    --merge the rest take their defaults; with --merge, from the policy in force. Examples:

    \b
      podium policy set support --allow-provider local --max-run-tokens 20000 --on-exceed approval
      podium policy set support --file policy.yaml
      podium policy set support --merge --ban "guaranteed returns"
    """
    known = _fields()
    bad = [u for u in unset if u not in known]
    if bad:
        fail(f"--unset {bad[0]!r}: not a policy field; fields are: {', '.join(known)}")
    from_file = _read_file(file) if file else {}
    if from_file:
        _build(from_file, "stdin" if file == "-" else file or "")  # report the file's own problems first
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in flags.items() if v is not None and v != ()}
    if not (from_file or given or unset or merge):
        fail(
            f"nothing to set for {workflow!r}: give --file or flags such as --max-run-tokens 20000 "
            f"(an empty policy allows everything; to remove one use: podium policy clear {workflow})"
        )
    async with make_client(db, recover=False) as c:
        await c.authorize("policies.write", f"workflow:{workflow}")
        current = await c.policies()
        base: dict[str, Any] = {}
        started = None
        if merge:
            default = _default_of(workflow)
            started = workflow if workflow in current else default if default in current else None
            if started is not None:
                base = _plain(current[started])
        data = {**base, **from_file, **given}
        for name in unset:
            data.pop(name, None)
        new = _build(data, "the merged policy" if merge else "the flags")
        await c.set_policy(workflow, new)
        also = await _held_by_default_too(c, workflow, {**current, workflow: new})
    out = console()
    out.print(f"policy of {workflow}: {_summary(new)}", highlight=False, markup=False)
    default = _default_of(workflow)
    if merge and started is not None and started == default:
        out.print(
            f"(started from the default {default!r}; {workflow} now has a policy of its own)",
            highlight=False,
            markup=False,
        )
    if also:
        out.print(also, highlight=False, markup=False)
    elif not merge and default is not None and default in current and workflow not in current:
        out.print(
            f"note: this replaces the default {default!r} for {workflow} (policies do not combine); "
            "use --merge to start from it",
            highlight=False,
            markup=False,
        )
    return EXIT_OK


@policy.command("clear")
@click.argument("workflow")
@db_option
@run_async
@requires("policies.write", lambda kw: f"workflow:{kw['workflow']}")
async def policy_clear(workflow: str, db: str | None) -> int:
    """Remove the policy of WORKFLOW (it falls back to the default '*', if set)."""
    async with make_client(db, recover=False) as c:
        await c.authorize("policies.write", f"workflow:{workflow}")
        current = await c.policies()
        if workflow in current:
            await c.set_policy(workflow, None)
    if workflow not in current:
        # like a kill switch: a mistyped name must not read as a policy lifted; said, and exit 2
        import difflib

        close = difflib.get_close_matches(workflow, sorted(current), n=1)
        if close:
            fail(
                f"{workflow} has no policy of its own, so nothing was cleared; did you mean {close[0]!r}? "
                f"(policies: {', '.join(sorted(current))})"
            )
        console().print(
            f"{workflow} had no policy of its own; nothing to clear", highlight=False, markup=False
        )
    elif _default_of(workflow) in current:
        console().print(
            f"policy of {workflow} removed; the default {_default_of(workflow)!r} now applies",
            highlight=False,
            markup=False,
        )
    else:
        console().print(f"policy of {workflow} removed", highlight=False, markup=False)
    return EXIT_OK

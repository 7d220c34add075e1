"""Policies and kill switches as the store holds them, checked against the signed audit log.

Their rows live in the store's key-value table, which anyone who can write the database can edit:
loosen a workflow's policy, delete the default ``*`` or clear the kill switch an incident set. An
admin's every change is also a signed entry (``policy.set`` with the whole policy,
``killswitch.set``/``killswitch.clear``), so what is in force is what the last signed entry of each
says; a row only tells an engine which ones to look up. A row the log does not back is not taken
(warned once); a row deleted is still in force for an engine that had read it (it keeps its name
and looks it up again); ``podium audit verify`` names every row that differs from the log, missing
ones too (:func:`problems`).

Each engine keeps the row it last checked and what the log said (:class:`Checked`), so a refresh
reads the log again only for rows that changed or went away. With auditing off
(``Client(audit=False)``) rows count as stored.

The same holds for prompt texts and deployed versions (their hashes and references), and for which
version of each is active (:func:`active_in`: the last signed deploy, ``prompt.put`` or rollback).
:func:`problems` also gathers what ``verify`` says of model owners (:mod:`.owned`), look-alike marks
(:mod:`.bound`), spending counters (:mod:`.counters`) and dead letters.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..connectors import _learned as learned
from ..connectors._contracts import KV_NAMESPACE as CONTRACTS
from ..records import AuditEntry
from ..storage import Store
from ..storage import _quarantined as kept
from ..storage import _sealed as sealed
from ..storage._letters import DEADLETTERS, open_letter, settled
from . import bound, counters, owned, references
from .audit import entry_signed
from .policy import POLICIES, Policy

SWITCHES = "switches"
PROMPTS = "prompts"  # "name@version" -> {"text", "hash", ...} (podium/engine/prompts.py)
TEXTS, META = "workflows", "workflow_versions"  # "name@version" -> text; -> {"hash", "kind", "ref"...} (engine/versions.py)
POLICY_ACTIONS = ("policy.set",)
SWITCH_ACTIONS = ("killswitch.set", "killswitch.clear")
log = logging.getLogger("podium.governance")


@dataclass
class Checked:
    """What one engine checked: per name, the row it read with its target's newest governing entry,
    and the value the log gave for it."""

    policies: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    switches: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return "(unreadable)"


def policy_of(entry: AuditEntry | None) -> dict[str, Any] | None:
    """The policy a ``policy.set`` entry set (None: cleared, or no entry)."""
    logged = entry.details().get("policy") if entry is not None else None
    return logged if isinstance(logged, dict) else None


def switch_of(entry: AuditEntry | None) -> dict[str, Any] | None:
    """The switch a ``killswitch.set`` entry set, as its row holds it (None: cleared, or no entry)."""
    if entry is None or entry.action != "killswitch.set":
        return None
    d = entry.details()
    return {"mode": d.get("mode"), "reason": d.get("reason"), "by": entry.actor, "ts": entry.ts}


def _same_switch(row: Any, logged: dict[str, Any] | None) -> bool:
    if row is None or logged is None:
        return row is None and logged is None
    return isinstance(row, dict) and all(row.get(k) == logged[k] for k in ("mode", "reason", "by"))


def policy_problem(name: str, row: Any, entry: AuditEntry | None) -> str | None:
    logged = policy_of(entry)
    if row == logged:
        return None
    said = f"audit entry {entry.seq} set {'it to ' + json.dumps(logged) if logged else 'none'}" if entry else "no signed policy.set entry set it"
    return (
        f"the policy of {name!r} in the store is {json.dumps(row) if row is not None else 'missing'}, but {said}: it was "
        f"changed behind the admins' back and the logged one is in force; set it again with podium policy set {name} ..."
    )


def switch_problem(key: str, row: Any, entry: AuditEntry | None) -> str | None:
    logged = switch_of(entry)
    if _same_switch(row, logged):
        return None
    said = f"audit entry {entry.seq} ({entry.action}) says {'it is on' if logged else 'it is off'}" if entry else "no signed entry set it"
    return (
        f"kill switch {key} in the store is {'on' if row is not None else 'missing'}, but {said}: it was changed behind "
        "the admins' back and the logged state is in force; set or clear it again with podium killswitch"
    )


#: More names than this to look up at once (an engine's first refresh; many entries planted on
#: made-up targets, or renumbered): one read of every governing entry, not one query per name.
ONE_READ = 8


async def _lasts(store: Store, targets: list[str], actions: Iterable[str]) -> dict[str, AuditEntry]:
    """Per target, its newest signed entry of ``actions`` (targets without one: left out)."""
    keys, wanted, out = store.audit_keys.all(), set(targets), {}
    if len(targets) > ONE_READ:
        entries = [e for e in await store.governing_entries() if e.target in wanted]
    else:
        entries = [e for t in targets for e in await store.audit_for(t)]
    for e in sorted(entries, key=lambda e: e.seq):
        if e.action in actions and entry_signed(e, keys):
            out[e.target] = e
    return out


async def in_force(
    store: Store, rows: Mapping[str, str], seen: dict[str, tuple[Any, Any]], *, policies: bool, known: Iterable[str] = (),
    heads: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The policies (``policies``) or kill switches in force, by name: each row read, each one read
    before (``seen``, updated), each name ``known`` in force and each one the log ever set (``heads``:
    :meth:`Store.governing_heads`, by target) looked up in the log. A name is looked up again only
    when its row or its target's stamp of governing entries changed."""
    out: dict[str, Any] = {}
    heads = heads or {}
    logged = {t[len("workflow:"):] if policies else t: stamp for t, stamp in heads.items() if not policies or t.startswith("workflow:")}
    names = sorted(set(rows) | set(seen) | set(known) | set(logged))
    stale = [n for n in names if n not in seen or seen[n][0] != (rows.get(n), logged.get(n))]
    last = await _lasts(store, [f"workflow:{n}" if policies else n for n in stale], POLICY_ACTIONS if policies else SWITCH_ACTIONS)
    for name in names:
        text = rows.get(name)
        stamp = (text, logged.get(name))
        if name in seen and seen[name][0] == stamp:
            value = seen[name][1]
        else:
            entry = last.get(f"workflow:{name}" if policies else name)
            row = _loads(text)
            problem = policy_problem(name, row, entry) if policies else switch_problem(name, row, entry)
            if problem:
                log.warning("%s", problem)
            value = policy_of(entry) if policies else switch_of(entry)
            seen[name] = (stamp, value)
        if value is None and text is None and name not in logged:
            seen.pop(name, None)
        elif value is not None:  # a new object each time: what a caller changes is not kept here
            out[name] = Policy.from_dict(value) if policies else dict(value)
    return out


def stored_prompt_problem(name: str, version: str, record: Any, entries: Iterable[AuditEntry]) -> str | None:
    text = record.get("text") if isinstance(record, dict) else None
    digest = hashlib.sha256(text.encode()).hexdigest() if isinstance(text, str) else None
    for e in entries:
        d = e.details()
        if e.action == "prompt.put" and d.get("hash") == digest and str(d.get("version")) == version:
            return None
    return (
        f"prompt {name!r} version {version} in the store is not a text that a signed prompt.put entry put (it was "
        f"rewritten behind the admins' back), so it is not used; put the text again: podium prompts put {name} FILE"
    )


async def prompt_problem(store: Store, name: str, version: str, record: Any) -> str | None:
    """Why the stored prompt version ``record`` may not be used: its text is not one a signed
    ``prompt.put`` entry recorded (by hash) for that name and version; None when it is."""
    keys = store.audit_keys.all()
    return stored_prompt_problem(name, version, record, [e for e in await store.audit_for(f"prompt:{name}") if entry_signed(e, keys)])


def deployed_problem(name: str, version: str, text: str | None, meta: Any, entries: Iterable[AuditEntry]) -> str | None:
    """Why deployed version ``version`` of workflow ``name`` (its stored ``text`` and ``meta`` rows)
    may not be loaded: its text, or for Python the reference imported to load it (for YAML the
    folder its relative paths are read from), is not what its newest signed ``workflow.deploy``
    entry recorded. None when it is. A Python version deployed by a release that did not record
    its reference is refused too: importing a reference the log does not name runs whatever file
    the row points at."""
    found = [e for e in entries if e.action == "workflow.deploy" and e.details().get("version") == version]
    digest = hashlib.sha256(text.encode()).hexdigest() if isinstance(text, str) else None
    meta = meta if isinstance(meta, dict) else {}
    why = None
    if not found:
        why = "no signed workflow.deploy entry deployed it"
    elif (d := found[-1].details()).get("hash") != digest or meta.get("hash") != digest:
        why = f"its text is not the one its signed workflow.deploy entry (audit entry {found[-1].seq}) recorded"
    elif meta.get("kind") == "python" and "ref" not in d:
        why = f"it is Python, and its workflow.deploy entry (audit entry {found[-1].seq}) was written by a release that did not record the reference to import"
    elif meta.get("kind") == "python" and d.get("ref") != meta.get("ref"):
        why = f"its reference {meta.get('ref')!r} is not the one its signed workflow.deploy entry (audit entry {found[-1].seq}) recorded"
    elif meta.get("kind") != "python" and "base_dir" in d and d.get("base_dir") != meta.get("base_dir"):
        why = f"its folder {meta.get('base_dir')!r} is not the one its signed workflow.deploy entry (audit entry {found[-1].seq}) recorded"
    if why is None:
        return None
    return (
        f"workflow {name!r} version {version} in the store is not the one its signed workflow.deploy entry deployed "
        f"({why}): it was changed behind the admins' back, or deployed by an earlier release, so it is not loaded; "
        f"deploy it again from its source (podium workflows deploy FILE_OR_REF)"
    )


async def deployed_problem_in(store: Store, name: str, version: str, text: str | None, meta: Any) -> str | None:
    """:func:`deployed_problem`, looking up the signed entries of ``name``."""
    keys = store.audit_keys.all()
    return deployed_problem(name, version, text, meta, [e for e in await store.audit_for(f"workflow:{name}") if entry_signed(e, keys)])


ACTIVATING = {"workflow": ("workflow.deploy", "workflow.rollback"), "prompt": ("prompt.put", "prompt.rollback")}
ACTIVE_ROWS = {"workflow": "workflow_active", "prompt": "prompt_active"}  # name -> the version in use
ACTIVE_TTL = 30.0  # seconds an engine takes a checked active row as it was (another engine's rollback: at most this late)


def logged_active(kind: str, entries: Iterable[AuditEntry]) -> str | None:
    """The version of a workflow or prompt (``kind``) that its last signed deploy (``prompt.put``)
    or rollback made active; ``entries``: the signed entries of its name, oldest first."""
    version = None
    for e in entries:
        if e.action in ACTIVATING[kind]:
            made = e.details().get("to_version" if e.action.endswith(".rollback") else "version")
            version = str(made) if made is not None else version
    return version


def active_problem(kind: str, name: str, row: str | None, logged: str | None) -> str | None:
    """Why the active-version row of ``name`` is not taken (None: the signed log made it active)."""
    if row == logged:
        return None
    said = f"the signed audit log made version {logged} active" if logged else "no signed entry of the audit log made a version active"
    command = "podium workflows rollback" if kind == "workflow" else "podium prompts rollback"
    return (
        f"the active version of {kind} {name!r} in the store is {row or 'missing'}, but {said}: it was switched behind "
        f"the admins' back, so {'version ' + logged if logged else 'none'} is used; make a version active with "
        f"{command} {name} --to VERSION"
    )


async def active_in(store: Store, kind: str, name: str, row: str | None, entries: list[AuditEntry] | None = None) -> tuple[str | None, str | None]:
    """The version of ``name`` in use (what the signed log made active) and why its row is not
    taken (None: it is); ``entries``: its signed entries, when read already."""
    if entries is None:
        keys = store.audit_keys.all()
        entries = [e for e in await store.audit_for(f"{kind}:{name}") if entry_signed(e, keys)]
    logged = logged_active(kind, entries)
    return logged, active_problem(kind, name, row, logged)


async def problems(store: Store, entries: list[AuditEntry]) -> list[str]:
    """Every policy and kill switch row that differs from the signed log (``entries``: the whole
    log, checked), rows missing for what the log set included."""
    keys = store.audit_keys.all()
    pol: dict[str, AuditEntry] = {}  # a policy and a switch may have the same target (workflow:NAME)
    sw: dict[str, AuditEntry] = {}
    for e in entries:
        if e.action in POLICY_ACTIONS + SWITCH_ACTIONS and entry_signed(e, keys):
            (pol if e.action in POLICY_ACTIONS else sw)[e.target] = e
    found = []
    rows = await store.kv_list(POLICIES)
    names = set(rows) | {t[len("workflow:"):] for t, e in pol.items() if policy_of(e)}
    for name in sorted(names):
        problem = policy_problem(name, _loads(rows.get(name)), pol.get(f"workflow:{name}"))
        found += [problem] if problem else []
    rows = await store.kv_list(SWITCHES)
    for key in sorted(set(rows) | {t for t, e in sw.items() if switch_of(e)}):
        problem = switch_problem(key, _loads(rows.get(key)), sw.get(key))
        found += [problem] if problem else []
    puts: dict[str, list[AuditEntry]] = {}
    for e in entries:
        if e.action == "prompt.put" and entry_signed(e, keys):
            puts.setdefault(e.target, []).append(e)
    for key, text in sorted((await store.kv_list(PROMPTS)).items()):
        name, _, version = key.rpartition("@")
        problem = stored_prompt_problem(name, version, _loads(text), puts.get(f"prompt:{name}", []))
        found += [problem] if problem else []
    deploys: dict[str, list[AuditEntry]] = {}
    for e in entries:
        if e.action == "workflow.deploy" and entry_signed(e, keys):
            deploys.setdefault(e.target, []).append(e)
    texts = await store.kv_list(TEXTS)
    for key, meta in sorted((await store.kv_list(META)).items()):
        name, _, version = key.rpartition("@")
        problem = deployed_problem(name, version, texts.get(key), _loads(meta), deploys.get(f"workflow:{name}", []))
        found += [problem] if problem else []
    for kind, ns in ACTIVE_ROWS.items():
        by_name: dict[str, list[AuditEntry]] = {}
        for e in entries:
            if e.action in ACTIVATING[kind] and entry_signed(e, keys):
                by_name.setdefault(e.target.partition(":")[2], []).append(e)
        rows = await store.kv_list(ns)
        for name in sorted(set(rows) | {n for n, es in by_name.items() if logged_active(kind, es)}):
            problem = active_problem(kind, name, rows.get(name), logged_active(kind, by_name.get(name, [])))
            found += [problem] if problem else []
    found += await owned.problems(store, entries) + await bound.problems(store, entries) + await references.problems(store, entries)
    found += await _contract_problems(store, entries)
    found += await _measured_problems(store, entries) + await _quarantine_problems(store, entries) + await _mark_problems(store)
    return found + await counters.problems(store, entries) + await _letter_problems(store, entries)


async def _quarantine_problems(store: Store, entries: list[AuditEntry]) -> list[str]:
    """Every quarantined connector result a replay would refuse (not sealed), or that a signed
    ``connector.drift`` entry set aside and is missing; every data gate's quarantined rows a release
    would refuse, or that are missing."""
    from ..connectors._quarantine import QuarantineBook

    keys = store.audit_keys.all()
    drifted = {
        str(e.details().get("quarantine_id")): e for e in entries if e.action == "connector.drift" and entry_signed(e, keys)
    }  # fmt: skip
    try:
        items = await QuarantineBook(store).list(limit=10**9)
    except Exception:  # a store kind without the quarantine table (memory://)
        items = []
    found = [i.problem for i in items if i.problem]
    held = {i.id for i in items}
    for qid, e in sorted(drifted.items()):
        if qid not in held:
            found.append(
                f"quarantined item {qid} (set aside by audit entry {e.seq}, run {e.target.partition(':')[2] or '?'}) is "
                "missing from the store: deleted behind the engine's back, so nobody replays it and its run may wait "
                "for it forever; look at the run (podium why RUN) and settle it (podium signal, or cancel it)"
            )
    return found + await kept.problems(store)


async def _mark_problems(store: Store) -> list[str]:
    """Every watched folder's file mark whose seal does not hold (podium/server/_file_marks.py): its
    file is checked against its run and its signed start at the next scan."""
    verifier = sealed.Verifier(store)
    found = []
    for mark, raw in sorted((await store.kv_list("filedrops")).items()):
        entry, holds = sealed.opened(store, "filedrop", mark, raw, verifier)
        if not holds:
            rid = entry.get("run") if entry else raw
            found.append(
                f"a watched folder's mark of file run {rid if isinstance(rid, str) and len(rid) < 40 else '?'} is not sealed "
                "with the audit key (written or edited in the store behind the server's back, or kept by a release before "
                "marks were sealed): the server's next scan starts its file only if the file never ran, and seals the mark"
            )
    return found


#: What the ML monitor measures a model by (podium/ml/_predict.py): namespace -> (row kind, count kind).
MEASURED = {"ml_outcomes": ("outcome", "outcomes"), "ml_predictions": ("prediction", "predictions")}


async def _measured_problems(store: Store, entries: list[AuditEntry]) -> list[str]:
    """Every model whose outcomes or predictions are not all sealed, or fewer than their sealed count."""
    verifier = sealed.Verifier(store)
    tallies = await store.kv_list(sealed.TALLIES)
    found = []
    for ns, (kind, counted) in MEASURED.items():
        seen: dict[str, list[int]] = {}  # model -> [sealed, not sealed]
        for key, text in (await store.kv_list(ns)).items():
            _, holds = sealed.opened(store, kind, key, text, verifier)
            seen.setdefault(key.partition(":")[0], [0, 0])[0 if holds else 1] += 1
        for name in {k.partition(":")[2] for k in tallies if k.startswith(counted + ":")}:
            seen.setdefault(name, [0, 0])
        for e in entries:  # counts deleted with every row they counted
            if e.action == sealed.COUNT_START and e.target.startswith(f"count:{counted}:"):
                seen.setdefault(e.target[len(f"count:{counted}:") :], [0, 0])
        for model, (good, bad) in sorted(seen.items()):
            if bad:
                found.append(
                    f"ML {counted} of model {model!r}: {bad} of {good + bad} in the store are not sealed with the audit key "
                    "(written or edited behind the engine's back, or kept by a release before they were sealed); the "
                    f"monitor does not measure them: record them again, or seal the rows you trust: podium ml seal {model}"
                )
            what = f"ML {counted} of model {model!r}"
            problem = await sealed.tally_problem(
                store, counted, model, tallies.get(f"{counted}:{model}"), good + bad, what, verifier, sealed_rows=good,
                reset=f"podium ml seal {model}",
            )
            found += [problem] if problem else []
    return found


async def _contract_problems(store: Store, entries: list[AuditEntry]) -> list[str]:
    """Every learned connector contract whose seal does not hold, or that a signed entry learned and is missing."""
    keys = store.audit_keys.all()
    learnt = {
        (e.target.partition(":")[2], str(e.details().get("operation"))): e
        for e in entries if e.action == learned.LEARN and entry_signed(e, keys)
    }  # fmt: skip
    rows = await store.kv_list(CONTRACTS)
    named = {f"{name}.{op}": (name, op) for name, op in learnt}
    found = []
    for key, text in sorted(rows.items()):
        name, _, op = key.partition(".") if key not in named else ("", "", "")
        name, op = named.get(key, (name, op))  # a name holding a dot: as its entry says
        schema, problem = learned.open_contract(store, name, op, text)
        if problem is None and (e := learnt.get((name, op))) is not None:
            problem = learned.not_newest(name, op, schema, e)
        found += [problem] if problem else []
    for (name, op), e in sorted(learnt.items()):
        found += [learned.deleted(name, op, e)] if f"{name}.{op}" not in rows else []
    return found


async def _letter_problems(store: Store, entries: list[AuditEntry]) -> list[str]:
    """Every dead letter a replay would refuse: not sealed by the engine, or settled since (its row put back)."""
    keys = store.audit_keys.all()
    settling: dict[str, list[AuditEntry]] = {}
    for e in entries:
        if e.action in ("deadletter.discard", "deadletter.replay") and entry_signed(e, keys):
            settling.setdefault(e.target, []).append(e)
    found = []
    for key, text in sorted((await store.kv_list(DEADLETTERS)).items()):
        letter, problem = open_letter(store, key, text)
        problem = problem or settled(letter, settling.get(f"deadletter:{key}", []))
        found += [problem] if problem else []
    return found

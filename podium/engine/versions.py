"""Workflow versions kept in the store: deploy, list, diff, roll back.

A deployed YAML workflow is stored with its exact text, so a run pinned to an old version resumes
with that version's definition, in any process, even after the file changed. A deployed Python
workflow is stored as a snapshot of its definition (every step's options and source code) and its
fingerprint: the snapshot makes versions diffable and auditable, and the fingerprint lets any
process that imports the same code resume the runs pinned to that version (and refuse code that
changed without a deploy)."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import inspect
import json
import logging
import os
import shlex
import textwrap
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DefinitionError, NotFound
from ..governance.accounts import signed
from ..governance.backed import ACTIVE_TTL, active_in, deployed_problem
from .behaviour import PYTHON, UNBOUNDED, behaviour_digest, matches, recorded

if TYPE_CHECKING:
    from ..governance.service import Governance
    from ..storage import Store
    from .registry import WorkflowRegistry
    from .workflow import Workflow

log = logging.getLogger(__name__)

TEXTS = "workflows"  # "name@version" -> YAML text (shared with the HTTP API's deploy endpoint)
META = "workflow_versions"  # "name@version" -> {"hash", "by", "ts", "base_dir"}
ACTIVE = "workflow_active"  # name -> version that starts new runs


class Deployments:
    """Deploy, list, diff and roll back workflow versions (``client.deployments``; the client's
    ``deploy``/``versions``/``rollback``/``diff`` delegate here)."""

    def __init__(self, store: Store, governance: Governance, registry: WorkflowRegistry) -> None:
        self.store = store
        self.governance = governance
        self.registry = registry
        self._active: dict[str, tuple[str | None, str | None, float]] = {}  # name -> (row, in use, checked at)

    async def active(self, name: str, entries: list[Any] | None = None) -> str | None:
        """The version of ``name`` that starts new runs: the one the signed log made active (its
        row is checked against the log; a row the log does not back is not taken: warned, and
        audited once per engine and row). ``entries``: its signed entries, when read already."""
        row = await self.store.kv_get(ACTIVE, name)
        if not self.governance.audit_enabled:
            return row
        seen = self._active.get(name)
        now = time.monotonic()
        if entries is None and seen is not None and seen[0] == row and now - seen[2] < ACTIVE_TTL:
            return seen[1]
        version, problem = await active_in(self.store, "workflow", name, row, entries)
        if problem and (seen is None or seen[0] != row or seen[1] != version):
            log.warning("%s", problem)
            await self.governance.record(
                "access.denied", f"active:workflow:{name}", actor="engine", reason="record not backed by the audit log", problem=problem
            )
        self._active[name] = (row, version, now)
        return version

    async def deploy(
        self, source: str | Workflow, *, base_dir: str | None = None, text_only: bool = False
    ) -> Workflow:
        """Deploy a workflow as a new version and make it active: a YAML file path or text, or a
        Python workflow (a :class:`Workflow`, or its reference ``module:attr`` / ``file.py:attr``).
        With ``text_only`` (what a remote caller sends: the HTTP API), ``source`` is YAML text and
        nothing else: never a path to read or a module to import.

        Every change makes a version: deploying a definition whose declared version already exists
        with other content stores it as ``VERSION.N``; deploying the same definition again changes
        nothing. Runs stay pinned to the version they started on."""
        from .loading import load_workflow
        from .workflow import Workflow

        await self.governance.authorize("workflows.deploy")
        if isinstance(source, Workflow):
            return await self.deploy_python(source)
        if text_only:
            return await self._deploy_text(source, "<deployed>", base_dir)
        if not os.path.exists(source) and "\n" not in source and ":" in source and not source.lstrip().startswith(
            ("name:", "{")
        ):
            return await self.deploy_python(load_workflow(source))

        if os.path.exists(source):
            base_dir = base_dir or os.path.dirname(os.path.abspath(source))
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
            filename = source
        else:
            text, filename = source, "<deployed>"
        return await self._deploy_text(text, filename, base_dir)

    async def _deploy_text(self, text: str, filename: str, base_dir: str | None) -> Workflow:
        from ..governance.capabilities import Unlisted
        from ..governance.capabilities import load as registered
        from .loading import load_text

        # Checked against the capability registry: a file may use only what an admin registered.
        caps: Mapping[str, Any] = await registered(self.store)
        if not self.governance.principal.can("workflows.read"):  # may deploy, not read the registry
            caps = Unlisted(caps)  # its names are looked up, never offered as "did you mean"
        wf = load_text(text, filename, base_dir=base_dir, capabilities=caps)
        return await self._store_version(wf, text, {"kind": "yaml", "base_dir": base_dir})

    async def deploy_python(self, wf: Workflow) -> Workflow:
        wf.freeze()
        if wf.ref is None:
            from .loading import guess_ref

            wf.ref = guess_ref(wf)
        wf.version = wf.declared_version
        extra = {"kind": "python", "ref": wf.ref, "behaviour": {PYTHON: behaviour_digest(wf)}}
        if behaviour_digest(wf).startswith(UNBOUNDED):
            log.warning(
                "workflow %r: its steps reach more values or deeper calls than its behaviour digest covers (a "
                "cluster of many functions that call each other, data nested very deep): in a store with users its "
                "runs are held by the default policy '*' too in every process but this one (docs/governance.md, "
                "\"What counts as the same Python definition\")", wf.name,
            )  # fmt: skip
        return await self._store_version(wf, python_snapshot(wf), extra)

    async def _store_version(self, wf: Workflow, text: str, extra: dict[str, Any]) -> Workflow:
        digest = hashlib.sha256(text.encode()).hexdigest()
        existing = await self.store.kv_list(META)
        metas = {k: json.loads(v) for k, v in existing.items() if k.startswith(f"{wf.name}@")}
        same = same_version(metas, digest, extra.get("behaviour"))
        if same:
            version = same[0].split("@", 1)[1]
            meta, mine = metas[same[0]], extra.get("behaviour")
            if mine is not None and (recorded(meta) or {}).get(PYTHON) is None:
                # deployed before digests were recorded, or from another Python: this one's is added
                merged = {**(recorded(meta) or {}), **mine}
                await self.store.kv_put(META, same[0], json.dumps({**meta, "behaviour": merged}))
        else:
            version, n = wf.version, 1
            while f"{wf.name}@{version}" in existing:
                n += 1
                version = f"{wf.version}.{n}"
            meta = {"hash": digest, "by": self.governance.principal.name, "ts": time.time(), **extra}
            await self.store.kv_put(TEXTS, f"{wf.name}@{version}", text)
            await self.store.kv_put(META, f"{wf.name}@{version}", json.dumps(meta))
        wf.version = version
        if extra.get("kind") != "python":
            wf.ref = None
        self.registry.register(wf)
        wf.resolved_by = wf.deployed_in = self
        who = self.governance.principal  # the roles recorded bound what the workflow's triggers may do as them
        data: dict[str, Any] = {"roles": list(who.whole_roles if who.whole_roles is not None else who.roles)}
        if who.local:  # the local user, not a user an admin named 'local'
            data["local"] = True
        if "behaviour" in extra:
            data["behaviour"] = extra["behaviour"]
        data.update({"ref": meta.get("ref")} if extra.get("kind") == "python" else {"base_dir": meta.get("base_dir")})
        await self.governance.record(
            "workflow.deploy", f"workflow:{wf.name}", version=version, hash=digest, unchanged=bool(same), **data
        )  # before the row: a reader between the two finds the row the log no longer backs, and uses the log's
        await self.store.kv_put(ACTIVE, wf.name, version)
        return wf

    async def resolve(self, wf: Workflow) -> Workflow:
        """Label ``wf`` with the deployed version whose definition it is, once per client.

        A workflow with deployed versions may only run as one of them: code or YAML that changed
        without a deploy is refused, so that no run is recorded as a version it is not."""
        if wf.resolved_by is self:
            return wf
        prefix = f"{wf.name}@"
        metas = {k[len(prefix):]: json.loads(v) for k, v in (await self.store.kv_list(META)).items() if k.startswith(prefix)}
        if metas:
            digest = definition_hash(wf)
            match = sorted((m["ts"], v) for v, m in metas.items() if m["hash"] == digest)
            if not match:
                from ..errors import DefinitionError

                where = wf.ref or getattr(wf, "source_file", None) or "this definition"
                raise DefinitionError(
                    f"workflow {wf.name!r} has deployed versions ({', '.join(sorted(metas))}), and {where} "
                    f"matches none of them: it changed since it was deployed. Deploy it as a new version "
                    f"(someone with workflows.deploy: {deploy_command(wf)}) or start the deployed one by name "
                    f"(podium run {shlex.quote(wf.name)})"
                )
            # of versions with its fingerprint, the newest that it also behaves as (its module's values)
            version = ([v for ts, v in match if same_code(wf, metas[v])] or [v for ts, v in match])[-1]
            if wf.version != version:
                self.registry.relabel(wf, version)
            if same_code(wf, metas[version]):
                wf.deployed_in = self
        wf.resolved_by = self
        return wf

    async def check_pinned(self, name: str, version: str) -> None:
        """Before resuming a run pinned to ``name@version``: a registered workflow that claims that
        version but is another deployed definition (its code changed in place) must not run it."""
        wf = self.registry.get(name, version)
        if wf is None or wf.resolved_by is self:
            return
        meta_text = await self.store.kv_get(META, f"{name}@{version}")
        if meta_text is None:  # never deployed: pinned by its declared version alone
            return
        meta = json.loads(meta_text)
        if meta["hash"] == definition_hash(wf):
            wf.resolved_by = self
            if deployed_here(wf, meta):
                wf.deployed_in = self
            return
        self.registry.remove(wf)  # the deployed version is loaded (or refused) instead
        with contextlib.suppress(Exception):
            await self.resolve(wf)

    def owns_name_known(self, wf: Workflow) -> bool:
        """:meth:`owns_name` when it is known without reading the store (no coroutine for most runs)."""
        return wf.deployed_in is self or not self.governance.users_exist

    async def owns_name(self, wf: Workflow) -> bool:
        """Whether a run of ``wf`` is the workflow its name stands for, so that the policy named after
        it applies in full (:mod:`podium.governance.bound`): always in a store without users; else
        only the deployed definition of ``name@version`` (its fingerprint the deployment's, and the
        same code behind it: :func:`same_code`), since any file may call itself by a deployed name. Asked once per run; a yes is kept on ``wf``."""
        if self.owns_name_known(wf):
            return True
        meta = await self.store.kv_get(META, f"{wf.name}@{wf.version}")
        if meta is None or not deployed_here(wf, json.loads(meta)):
            return False
        wf.deployed_in = self  # deployed since it was registered here (by another process)
        return True

    async def unowned(self, wf: Workflow, run_id: str) -> str:
        """For run ``run_id`` of ``wf``, not the workflow its name stands for: marked so (what is sent
        to it later is redacted as its input is: :func:`podium.governance.bound.mark_not_deployed`),
        and :meth:`unowned_fix`."""
        from ..governance.bound import mark_not_deployed

        await mark_not_deployed(self.store, run_id, self.governance, workflow=wf.name, version=wf.version)
        return await self.unowned_fix(wf)

    async def unowned_fix(self, wf: Workflow) -> str:
        """For a run of ``wf`` that is not the workflow its name stands for (:meth:`owns_name` said
        no), what a refusal by ``*`` tells the user to do: the command that deploys it and, when it
        reads like a deployed version (its fingerprint) with other code behind it, why it is not
        that version and how to start the deployed one."""
        command = deploy_command(wf)
        meta_text = await self.store.kv_get(META, f"{wf.name}@{wf.version}")
        meta = json.loads(meta_text) if meta_text is not None else None
        if meta is None or meta.get("hash") != definition_hash(wf):
            return command
        return f"{command} ({not_same_code(wf, meta, wf.version)}; or start the deployed one by name: podium run {shlex.quote(wf.name)})"

    async def versions(self, name: str) -> list[dict[str, Any]]:
        """Every deployed version of ``name``, oldest first, with who deployed it and which is active."""
        await self.governance.authorize("workflows.read", f"workflow:{name}")
        active = await self.active(name)
        out = []
        for key, text in (await self.store.kv_list(META)).items():
            wf_name, _, version = key.partition("@")
            if wf_name == name:
                meta = json.loads(text)
                out.append({"version": version, "active": version == active, **meta})
        out.sort(key=lambda v: v["ts"])
        return out

    async def rollback(self, name: str, *, to: str | None = None) -> str:
        """Make an earlier version active again (the one before the active one, or ``to``)."""
        await self.governance.authorize("workflows.deploy", f"workflow:{name}")
        versions = [v["version"] for v in await self.versions(name)]
        if not versions:
            raise NotFound(f"workflow {name!r} has no deployed versions; deploy one with 'podium workflows deploy FILE'")
        active = await self.active(name)
        to = rollback_target(versions, active, to, f"workflow {name!r}")
        wf = await self.load_deployed(name, to)  # refuses (changing nothing) if it cannot be loaded
        await self.governance.record("workflow.rollback", f"workflow:{name}", from_version=active, to_version=to)
        await self.store.kv_put(ACTIVE, name, to)
        if wf is not None:
            self.registry.set_latest(wf)
        return to

    async def diff(self, name: str, a: str, b: str) -> str:
        """A unified diff between two deployed versions' definitions."""
        await self.governance.authorize("workflows.read", f"workflow:{name}")
        texts = []
        for v in (a, b):
            text = await self.store.kv_get(TEXTS, f"{name}@{v}")
            if text is None:
                known = [x["version"] for x in await self.versions(name)]
                there = f"its versions are {', '.join(known)}" if known else "it has none; deploy one with 'podium workflows deploy FILE'"
                raise NotFound(f"workflow {name!r} has no deployed version {v!r}: {there} (podium workflows versions {name})")
            texts.append(text)
        return "".join(
            difflib.unified_diff(
                texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True), f"{name}@{a}", f"{name}@{b}"
            )
        )

    async def load_deployed(self, name: str, version: str | None = None) -> Workflow | None:
        """Register a deployed version from the store (the active one by default); None if not deployed."""
        from .loading import load_text

        audited = self.governance.audit_enabled
        entries = await signed(self.store, f"workflow:{name}") if audited else []
        active = await self.active(name, entries)
        version = version or active
        if version is None:
            return None
        text = await self.store.kv_get(TEXTS, f"{name}@{version}")
        if text is None:
            return None
        meta_text = await self.store.kv_get(META, f"{name}@{version}")
        meta = json.loads(meta_text) if meta_text else {}
        if audited and (problem := deployed_problem(name, version, text, meta, entries)):
            raise DefinitionError(problem)  # before anything is imported or loaded: the rows are a database's
        if meta.get("kind") == "python":
            wf = self.registry.get(name, version) or self._load_python(name, version, meta)
        else:
            wf = load_text(text, f"<{name}@{version}>", base_dir=meta.get("base_dir"))
            wf.ref, wf.deployed_in = None, self  # the deployed text itself
        wf.version = version
        self.registry.register(wf)
        wf.resolved_by = self
        if active == version:
            self.registry.set_latest(wf)
        return wf

    def _load_python(self, name: str, version: str, meta: dict[str, Any]) -> Workflow:
        """The code of a deployed Python version, from its reference, if it is still that code."""
        from ..errors import DefinitionError
        from .loading import load_workflow

        ref = meta.get("ref")
        if not ref:
            raise DefinitionError(
                f"version {version} of Python workflow {name!r} was deployed without an importable "
                "reference; register it with client.register(...) in the process that resumes its runs"
            )
        loaded = load_workflow(ref)
        loaded.freeze()
        if hashlib.sha256(python_snapshot(loaded).encode()).hexdigest() != meta["hash"]:
            raise DefinitionError(
                f"{ref} no longer holds version {version} of workflow {name!r}: its code changed since "
                f"that version was deployed. Running version {version} (to resume its runs, or to roll "
                f"back to it) needs that code importable again, e.g. from its release; to run the new "
                f"code, deploy it as a new version with 'podium workflows deploy {ref}'"
            )
        if matches(loaded, meta):  # else the module's values changed since: run, but not as the deployed one
            loaded.deployed_in = self
        return loaded


def rollback_target(versions: list[str], active: str | None, to: str | None, what: str) -> str:
    """The version a rollback makes active: ``to`` if it exists, else the one before ``active``."""
    if to is None:
        i = versions.index(active) if active in versions else len(versions)
        if i == 0:
            raise ConfigError(f"version {active} is the first version of {what}: nothing to roll back to")
        return versions[i - 1]
    if to not in versions:
        raise NotFound(f"{what} has no version {to!r}; versions: {', '.join(versions)}")
    return to


def deploy_command(wf: Workflow) -> str:
    """The command that deploys ``wf``, for messages (``FILE`` when it came from no file)."""
    where = wf.ref or getattr(wf, "source_file", None)
    return f"podium workflows deploy {shlex.quote(where) if where and not where.startswith('<') else 'FILE'}"


def definition_hash(wf: Workflow) -> str:
    """The fingerprint a deployed version is known by: SHA-256 of its YAML text, or of the snapshot
    of a Python workflow."""
    text = wf.source_text
    return hashlib.sha256((text if text is not None else python_snapshot(wf)).encode()).hexdigest()


def same_version(metas: dict[str, dict[str, Any]], digest: str, behaviour: dict[str, str] | None) -> list[str]:
    """The deployed versions (``name@version`` keys) a new deployment with fingerprint ``digest``
    (and, for Python, ``behaviour``: this Python's digest) is: the same fingerprint, and no other
    digest recorded for this Python; those that record it first."""
    mine, found = (behaviour or {}).get(PYTHON), []
    for key, meta in metas.items():
        digests = recorded(meta) or {}
        if meta["hash"] == digest and digests.get(PYTHON, mine) == mine:
            found.append((PYTHON not in digests, key))
    return [key for _, key in sorted(found)]


def deployed_here(wf: Workflow, meta: dict[str, Any]) -> bool:
    """Whether ``wf`` is the deployed version ``meta`` describes: the same fingerprint and
    (:func:`same_code`) the same code behind it."""
    return meta.get("hash") == definition_hash(wf) and same_code(wf, meta)


def same_code(wf: Workflow, meta: dict[str, Any]) -> bool:
    """For a ``wf`` with the fingerprint of the version ``meta`` describes, whether the code behind
    it is that version's. Python: the snapshot holds each step's options and source text, not the
    module's constants, helpers, closures or defaults they use: the digest of those
    (:mod:`podium.engine.behaviour`) must be the deployed one too, when the version records one
    (versions deployed before it was recorded are known by their snapshot alone; deploying them
    again adds it). YAML: loaded in the folder where that version resolves its code (``uses:
    module:function``): a YAML fingerprint is its text alone, and the same text beside code of
    one's own is another workflow."""
    if wf.source_text is None:
        return matches(wf, meta)
    if wf.source_dir is None:
        return True
    here, there = wf.source_dir, meta.get("base_dir") or os.getcwd()  # deployed without a folder: resolved in the cwd
    return here is not None and os.path.realpath(here) == os.path.realpath(there)


def not_same_code(wf: Workflow, meta: dict[str, Any], version: str) -> str:
    """Why ``wf``, with the fingerprint of deployed ``version`` (``meta``), is not that version
    (:func:`same_code` said no), for messages."""
    if wf.source_text is not None:
        return (
            f"its text is deployed version {version}'s, but loaded from {wf.source_dir}, not from "
            f"{meta.get('base_dir') or 'the folder it was deployed from'}: the code its steps use is this folder's"
        )
    mine, digests = behaviour_digest(wf), recorded(meta) or {}
    if mine.startswith(UNBOUNDED):
        return (
            f"its steps read like deployed version {version}'s, but their code reaches past the behaviour "
            "digest's bounds, so it matches no deployment (docs/governance.md, 'What counts as the same Python definition')"
        )
    if PYTHON not in digests:
        return (
            f"version {version} was deployed from another Python version ({', '.join(sorted(digests))}), "
            f"not from this one ({PYTHON}): deploy the same code from here too"
        )
    return (
        f"its steps read like deployed version {version}'s, but a module constant, helper, default or closure value "
        "they use differs from that version's"
    )


def _source(fn: Any) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn)).rstrip()
    except (OSError, TypeError):
        return f"# source not available: {getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!r}"


def python_snapshot(wf: Workflow) -> str:
    """A readable, diffable description of a Python workflow: its options and each step's options and
    source code. Its SHA-256 is the version's fingerprint (the version label itself is left out)."""
    out = [f"# workflow {wf.name} (Python)"]
    if wf.description:
        out.append(f"# {wf.description}")
    for attr in ("timeout", "max_concurrency", "input_type", "output_type"):
        value = getattr(wf, attr, None)
        if value is not None:
            out.append(f"# {attr}: {getattr(value, '__qualname__', value)!r}")
    for s in wf.steps.values():
        options = {
            "needs": list(s.deps),
            "map": s.map,
            "max_parallel": s.max_parallel,
            "retry": repr(s.retry),
            "timeout": s.timeout,
            "kind": s.kind,
            "on_error": s.on_error,
            "labels": list(s.labels),
            "loop": repr(s.loop) if s.loop is not None else None,
            "subworkflow": s.child.name if s.child is not None else None,
            "escalate": repr(s.escalate) if s.escalate is not None else None,
        }
        shown = {k: v for k, v in options.items() if v not in (None, [], "fail")}
        out.append("")
        out.append(f"## step {s.id} {json.dumps(shown, sort_keys=True, default=str)}")
        if s.when is not None:
            out.append(f"# when: {_source(s.when)}")
        out.append(_source(s.fn))
    return "\n".join(out) + "\n"

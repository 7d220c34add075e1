"""Workflow versions kept in the store: deploy, list, diff, roll back. A deployed YAML workflow is
stored with its exact text, so a run pinned to an old version resumes with that version's
definition, in any process, even after the file changed."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import time
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, NotFound

if TYPE_CHECKING:
    from ._workflow import Workflow
    from .storage import Store

TEXTS = "workflows"  # "name@version" -> YAML text (shared with the HTTP API's deploy endpoint)
META = "workflow_versions"  # "name@version" -> {"hash", "by", "ts", "base_dir"}
ACTIVE = "workflow_active"  # name -> version that starts new runs


class Versioned:
    """Deploy/rollback/versions/diff for the client (mixed into :class:`podium.Client`)."""

    store: Store

    async def deploy(self, source: str, *, base_dir: str | None = None) -> Workflow:
        """Deploy a YAML workflow (a file path, or its text) as a new version and make it active.

        Every change makes a version: deploying text whose declared version already exists with
        other content stores it as ``VERSION.N``; deploying the same text again changes nothing.
        Runs stay pinned to the version they started on."""
        from .yaml import load_text

        await self._authorize("workflows.deploy")  # type: ignore[attr-defined]
        if os.path.exists(source):
            base_dir = base_dir or os.path.dirname(os.path.abspath(source))
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
            filename = source
        else:
            text, filename = source, "<deployed>"
        wf = load_text(text, filename, base_dir=base_dir)
        digest = hashlib.sha256(text.encode()).hexdigest()
        existing = await self.store.kv_list(META)
        same = [k for k, v in existing.items() if k.startswith(f"{wf.name}@") and json.loads(v)["hash"] == digest]
        if same:
            version = same[0].split("@", 1)[1]
        else:
            version, n = wf.version, 1
            while f"{wf.name}@{version}" in existing:
                n += 1
                version = f"{wf.version}.{n}"
            meta = {"hash": digest, "by": self.principal.name, "ts": time.time(), "base_dir": base_dir}  # type: ignore[attr-defined]
            await self.store.kv_put(TEXTS, f"{wf.name}@{version}", text)
            await self.store.kv_put(META, f"{wf.name}@{version}", json.dumps(meta))
        wf.version = version
        wf.ref = None
        await self.store.kv_put(ACTIVE, wf.name, version)
        self.register(wf)  # type: ignore[attr-defined]
        await self._audit("workflow.deploy", f"workflow:{wf.name}", version=version, hash=digest, unchanged=bool(same))  # type: ignore[attr-defined]
        return wf

    async def versions(self, name: str) -> list[dict[str, Any]]:
        """Every deployed version of ``name``, oldest first, with who deployed it and which is active."""
        await self._authorize("workflows.read", f"workflow:{name}")  # type: ignore[attr-defined]
        active = await self.store.kv_get(ACTIVE, name)
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
        await self._authorize("workflows.deploy", f"workflow:{name}")  # type: ignore[attr-defined]
        versions = [v["version"] for v in await self.versions(name)]
        if not versions:
            raise NotFound(f"workflow {name!r} has no deployed versions; deploy one with 'podium deploy FILE'")
        active = await self.store.kv_get(ACTIVE, name)
        if to is None:
            i = versions.index(active) if active in versions else len(versions)
            if i == 0:
                raise ConfigError(f"version {active} is the first deployed version of {name!r}: nothing to roll back to")
            to = versions[i - 1]
        elif to not in versions:
            raise NotFound(f"workflow {name!r} has no version {to!r}; versions: {', '.join(versions)}")
        await self.store.kv_put(ACTIVE, name, to)
        await self._load_deployed(name, to)
        await self._audit("workflow.rollback", f"workflow:{name}", from_version=active, to_version=to)  # type: ignore[attr-defined]
        return to

    async def diff(self, name: str, a: str, b: str) -> str:
        """A unified diff between two deployed versions' definitions."""
        await self._authorize("workflows.read", f"workflow:{name}")  # type: ignore[attr-defined]
        texts = []
        for v in (a, b):
            text = await self.store.kv_get(TEXTS, f"{name}@{v}")
            if text is None:
                raise NotFound(f"workflow {name!r} has no deployed version {v!r}")
            texts.append(text)
        return "".join(
            difflib.unified_diff(
                texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True), f"{name}@{a}", f"{name}@{b}"
            )
        )

    async def _load_deployed(self, name: str, version: str | None = None) -> Workflow | None:
        """Register a deployed version from the store (the active one by default); None if not deployed."""
        from .yaml import load_text

        version = version or await self.store.kv_get(ACTIVE, name)
        if version is None:
            return None
        text = await self.store.kv_get(TEXTS, f"{name}@{version}")
        if text is None:
            return None
        meta_text = await self.store.kv_get(META, f"{name}@{version}")
        base_dir = json.loads(meta_text).get("base_dir") if meta_text else None
        wf = load_text(text, f"<{name}@{version}>", base_dir=base_dir)
        wf.version = version
        wf.ref = None
        self.register(wf)  # type: ignore[attr-defined]
        if await self.store.kv_get(ACTIVE, name) == version:
            self._latest[name] = wf  # type: ignore[attr-defined]
        return wf

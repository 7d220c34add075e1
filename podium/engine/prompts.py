"""Versioned prompts kept in the store: every change is a version; a run reads each prompt once and
keeps that version for its whole life, even if a new one is deployed meanwhile.

    await client.put_prompt("triage.system", "You sort support tickets for {company}...")
    # in a step:
    p = await ctx.prompt("triage.system")            # pinned for this run
    system = p.render(company="Acme")
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
import string
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, NonRetryableError, NotFound
from ..governance.accounts import signed
from ..governance.backed import active_in, stored_prompt_problem
from .versions import rollback_target

if TYPE_CHECKING:
    from ..governance.service import Governance
    from ..storage import Store

PROMPTS = "prompts"  # "name@version" -> {"text", "hash", "by", "ts", "description"}
ACTIVE_PROMPT = "prompt_active"  # name -> the version new runs read
log = logging.getLogger("podium.governance")


@dataclass(frozen=True, kw_only=True)
class PromptVersion:
    """One version of a prompt."""

    name: str
    version: str
    text: str
    hash: str = ""
    by: str = ""
    ts: float = 0.0
    description: str = ""

    def render(self, **values: Any) -> str:
        """The text with ``{placeholders}`` filled in; a missing value is a clear error."""
        names = {f for _, f, _, _ in string.Formatter().parse(self.text) if f}
        missing = sorted(n for n in names if n.split(".")[0].split("[")[0] not in values)
        if missing:
            raise ConfigError(
                f"prompt {self.name!r} version {self.version} needs {', '.join(missing)}; pass them to "
                f"render(...) (write {{{{ and }}}} for literal braces)"
            )
        return _Fields(self).format(self.text, **values)


class _Fields(string.Formatter):
    """``str.format`` that follows public attributes and indexes only: a stored prompt is written by
    whoever may deploy, and ``{value.__init__.__globals__}`` or ``{key._value}`` would hand it the
    engine's module globals (its environment, its keys) or a Secret's value."""

    def __init__(self, prompt: PromptVersion) -> None:
        self.prompt = prompt

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        import _string

        _, rest = _string.formatter_field_name_split(field_name)
        if any(is_attr and str(key).startswith("_") for is_attr, key in rest):
            raise ConfigError(
                f"prompt {self.prompt.name!r} version {self.prompt.version}: the placeholder {{{field_name}}} "
                "reads a private attribute; a prompt may only name the values given to render(...) and "
                "their public fields: change the prompt (podium prompts put), e.g. {order.id}"
            )
        return super().get_field(field_name, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        # A width or precision is memory: {n:>999999999} is a gigabyte of spaces in the engine.
        if any(len(digits.lstrip("0")) > 4 for digits in re.findall(r"\d+", format_spec)):
            raise ConfigError(
                f"prompt {self.prompt.name!r} version {self.prompt.version}: the format {format_spec!r} asks for "
                "a width or precision beyond 9,999 characters (a prompt may pad or cut a value to at most "
                "9,999); change the prompt (podium prompts put)"
            )
        return super().format_field(value, format_spec)


class PromptLibrary:
    """Versioned prompts kept in the store (``client.prompt_library``; the client's prompt methods
    delegate here)."""

    def __init__(self, store: Store, governance: Governance) -> None:
        self.store = store
        self.governance = governance
        self._refused: dict[str, str | None] = {}  # name -> the active row refused last (warned and audited once)

    async def put_prompt(self, name: str, text: str, *, description: str = "") -> PromptVersion:
        """Store ``text`` as the next version of prompt ``name`` and make it active (the same text
        again changes nothing). Needs ``workflows.deploy``; audited."""
        await self.governance.authorize("workflows.deploy", f"prompt:{name}")
        if not name or "@" in name:
            raise ConfigError(f"prompt name {name!r} must be non-empty and must not contain '@'")
        digest = hashlib.sha256(text.encode()).hexdigest()
        versions = await self._prompt_versions(name)
        same = [v for v in versions if v.hash == digest]
        if same:
            pv = same[-1]
        else:
            number = max((int(v.version) for v in versions if v.version.isdigit()), default=0) + 1
            pv = PromptVersion(
                name=name,
                version=str(number),
                text=text,
                hash=digest,
                by=self.governance.principal.name,
                ts=time.time(),
                description=description,
            )
            record = {k: getattr(pv, k) for k in ("text", "hash", "by", "ts", "description")}
            await self.store.kv_put(PROMPTS, f"{name}@{pv.version}", json.dumps(record))
        await self.governance.record("prompt.put", f"prompt:{name}", version=pv.version, hash=digest, unchanged=bool(same))
        await self.store.kv_put(ACTIVE_PROMPT, name, pv.version)  # after its entry, as a rollback's
        return pv

    async def prompt(self, name: str, version: str | None = None) -> PromptVersion:
        """A prompt's active version, or ``version``."""
        await self.governance.authorize("workflows.read", f"prompt:{name}")
        return await self.load(name, version)

    async def load(self, name: str, version: str | None = None) -> PromptVersion:
        """Read a prompt without a permission check (for a run, whose workflow was allowed to start)."""
        audited = self.governance.audit_enabled
        entries = await signed(self.store, f"prompt:{name}") if audited else []
        version = version or await self.active(name, entries)
        if version is None:
            known = sorted(await self.store.kv_list(ACTIVE_PROMPT))
            hint = difflib.get_close_matches(name, known, 1)
            raise NotFound(
                f"no prompt named {name!r}"
                + (f"; did you mean {hint[0]!r}? Or store" if hint else "; store")
                + f" one with 'podium prompts put {name} FILE' or client.put_prompt(...)"
            )
        text = await self.store.kv_get(PROMPTS, f"{name}@{version}")
        if text is None:
            raise NotFound(f"prompt {name!r} has no version {version!r}; see 'podium prompts versions {name}'")
        record = json.loads(text)
        if audited and (problem := stored_prompt_problem(name, version, record, entries)):
            raise NonRetryableError(problem)  # its text is checked against the signed log, not its own row
        return PromptVersion(name=name, version=version, **record)

    async def active(self, name: str, entries: list[Any] | None = None) -> str | None:
        """The version of prompt ``name`` that runs read: the one the signed log made active (a row the
        log does not back is not taken: warned, and audited once per engine and row). ``entries``:
        its signed entries, when read already."""
        row = await self.store.kv_get(ACTIVE_PROMPT, name)
        if not self.governance.audit_enabled:
            return row
        version, problem = await active_in(self.store, "prompt", name, row, entries)
        if problem and self._refused.get(name, "") != row:
            self._refused[name] = row
            log.warning("%s", problem)
            await self.governance.record(
                "access.denied", f"active:prompt:{name}", actor="engine", reason="record not backed by the audit log", problem=problem
            )
        return version

    async def prompt_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of prompt ``name``, oldest first, with which is active."""
        await self.governance.authorize("workflows.read", f"prompt:{name}")
        active = await self.active(name)
        return [
            {"version": v.version, "active": v.version == active, "hash": v.hash, "by": v.by, "ts": v.ts,
             "description": v.description}
            for v in await self._prompt_versions(name)
        ]

    async def prompts(self) -> dict[str, str]:
        """Every prompt's name and active version."""
        await self.governance.authorize("workflows.read")
        out = {}
        for name in sorted(await self.store.kv_list(ACTIVE_PROMPT)):
            version = await self.active(name)
            if version is not None:
                out[name] = version
        return out

    async def _prompt_versions(self, name: str) -> list[PromptVersion]:
        out = []
        for key, text in (await self.store.kv_list(PROMPTS)).items():
            n, _, version = key.rpartition("@")
            if n == name:
                out.append(PromptVersion(name=name, version=version, **json.loads(text)))
        out.sort(key=lambda v: (v.ts, v.version))
        return out

    async def rollback_prompt(self, name: str, *, to: str | None = None) -> str:
        """Make an earlier version of a prompt active (the one before the active one, or ``to``)."""
        await self.governance.authorize("workflows.deploy", f"prompt:{name}")
        versions = [v.version for v in await self._prompt_versions(name)]
        if not versions:
            raise NotFound(f"no prompt named {name!r}")
        active = await self.active(name)
        to = rollback_target(versions, active, to, f"prompt {name!r}")
        await self.governance.record("prompt.rollback", f"prompt:{name}", from_version=active, to_version=to)
        await self.store.kv_put(ACTIVE_PROMPT, name, to)
        return to

    async def diff_prompt(self, name: str, a: str, b: str) -> str:
        """A unified diff between two versions of a prompt."""
        pa, pb = await self.prompt(name, a), await self.prompt(name, b)
        return "".join(
            difflib.unified_diff(
                pa.text.splitlines(keepends=True), pb.text.splitlines(keepends=True), f"{name}@{a}", f"{name}@{b}"
            )
        )

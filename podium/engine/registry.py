"""The workflows one engine knows: every registered (name, version), and the version that starts
new runs of each name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import DefinitionError, NotFound
from .loading import guess_ref, load_workflow
from .workflow import Workflow

if TYPE_CHECKING:
    from ..records import RunRecord


class WorkflowRegistry:
    """Registered workflow definitions by name and version (``client.registry``)."""

    def __init__(self) -> None:
        self._by_version: dict[tuple[str, str], Workflow] = {}
        self._latest: dict[str, Workflow] = {}

    def register(self, wf: Workflow) -> Workflow:
        """Check ``wf``, keep it, and make it the version that starts new runs of its name."""
        wf.freeze()
        if wf.ref is None:
            wf.ref = guess_ref(wf)
        self._by_version[(wf.name, wf.version)] = wf
        self._latest[wf.name] = wf
        return wf

    def get(self, name: str, version: str) -> Workflow | None:
        """The registered definition of ``name@version``, if any."""
        return self._by_version.get((name, version))

    def latest(self, name: str) -> Workflow | None:
        """The definition that starts new runs of ``name``, if any."""
        return self._latest.get(name)

    def set_latest(self, wf: Workflow) -> None:
        """Make registered ``wf`` the one that starts new runs of its name."""
        self._latest[wf.name] = wf

    def relabel(self, wf: Workflow, version: str) -> None:
        """Record ``wf`` under ``version`` (the deployed version its definition matches)."""
        if self._by_version.get((wf.name, wf.version)) is wf:
            del self._by_version[(wf.name, wf.version)]
        latest = self._latest.get(wf.name)
        wf.version = version
        self._by_version[(wf.name, version)] = wf
        if latest is None or latest is wf or latest.version == version:
            self._latest[wf.name] = wf

    def remove(self, wf: Workflow) -> None:
        """Forget ``wf`` (a definition that may not run any more)."""
        if self._by_version.get((wf.name, wf.version)) is wf:
            del self._by_version[(wf.name, wf.version)]
        if self._latest.get(wf.name) is wf:
            del self._latest[wf.name]

    def is_latest(self, wf: Workflow) -> bool:
        return self._latest.get(wf.name) is wf

    def versions(self, name: str) -> list[str]:
        """The registered versions of ``name``, sorted."""
        return sorted(v for n, v in self._by_version if n == name)

    def names(self) -> dict[str, list[str]]:
        """Every registered name with its versions."""
        out: dict[str, list[str]] = {}
        for name, version in sorted(self._by_version):
            out.setdefault(name, []).append(version)
        return out

    def __iter__(self) -> Iterator[Workflow]:
        return iter(list(self._by_version.values()))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._by_version

    def require(self, name: str, version: str | None = None) -> Workflow:
        """Like :meth:`get`/:meth:`latest`, but raise :class:`NotFound` naming what is registered."""
        wf = self._latest.get(name) if version is None else self._by_version.get((name, version))
        if wf is None:
            known = ", ".join(sorted(f"{n}@{v}" for n, v in self._by_version)) or "none"
            raise NotFound(
                f"workflow {name!r}{f' version {version}' if version else ''} is not registered (known: {known})"
            )
        return wf

    def for_run(self, run: RunRecord, *, stub: bool = False) -> Workflow:
        """The definition ``run`` is pinned to: registered, or loaded from the reference recorded at
        its start. With ``stub``, an empty stand-in when neither works (to record a cancellation)."""
        try:
            return self._for_run(run)
        except Exception:
            if stub:
                return Workflow(run.workflow, version=run.version)
            raise

    def _for_run(self, run: RunRecord) -> Workflow:
        wf = self.get(run.workflow, run.version)
        if wf is not None:
            return wf
        if run.workflow_ref:
            loaded = load_workflow(run.workflow_ref)
            if loaded.version != run.version:
                raise DefinitionError(
                    f"run {run.id} was started on version {run.version} of {run.workflow!r}, but "
                    f"{run.workflow_ref} now defines version {loaded.version}; runs are pinned to their version: "
                    f"register version {run.version} to finish it"
                )
            return self.register(loaded)
        raise NotFound(
            f"run {run.id} needs workflow {run.workflow!r} version {run.version}, which is not registered "
            "and was started without a loadable reference; register it with client.register(...)"
        )

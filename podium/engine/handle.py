"""A started run's handle (:meth:`Client.start` returns one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..records import RunRecord


class _Runs(Protocol):
    """What a handle asks of its client (a :class:`Client`; not imported: the client imports this)."""

    async def result(self, run_id: str, timeout: float | None = None) -> Any: ...

    async def wait(self, run_id: str, timeout: float | None = None) -> RunRecord: ...


class RunHandle:
    """A started run. ``await handle.result()`` waits for it and returns its output."""

    def __init__(self, client: _Runs, run_id: str, *, created: bool = True) -> None:
        self.client = client
        self.id = run_id
        self.created = created
        """False when a run with this id existed: starting it again started nothing."""

    def __repr__(self) -> str:
        return f"<RunHandle {self.id}>"

    async def result(self, timeout: float | None = None) -> Any:
        """The run's output once it finishes; raises :class:`RunFailed` or :class:`RunCancelled`
        (needs ``runs.read`` and ``payloads.read``)."""
        return await self.client.result(self.id, timeout=timeout)

    async def wait(self, timeout: float | None = None) -> RunRecord:
        """The run's final record, whatever its status."""
        return await self.client.wait(self.id, timeout=timeout)

"""Run context: a small key-value state shared by the steps of one run, durable with the run.

Reads and writes are durable calls (``ctx.call``), so a replayed step sees what it saw the first
time and does not write twice. The values live in ``mem_run_state`` keyed by run id, beside the run
store's tables, and are deleted when the run is pruned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import _serde
from ._steps import memory_for, store_of

if TYPE_CHECKING:
    from ..engine.context import StepContext
    from ._memory import Memory

_MISSING: Any = object()


class RunState:
    """Key-value state of one run. Values are anything Podium can serialize."""

    def __init__(self, memory: Memory, run_id: str, ctx: StepContext | None = None) -> None:
        self.memory = memory
        self.run_id = run_id
        self.ctx = ctx

    async def _do(self, name: str, fn: Any, *args: Any) -> Any:
        await self.memory.open()
        if self.ctx is None:
            return await fn(*args)
        return await self.ctx.call(fn, *args, name=name)

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        found = await self._do(f"state.get:{key}", self._read, [key])
        return found.get(key, default)

    async def all(self) -> dict[str, Any]:
        """Every key and value."""
        result: dict[str, Any] = await self._do("state.all", self._read, None)
        return result

    async def set(self, key: str, value: Any) -> None:
        await self._do(f"state.set:{key}", self._write, {key: _serde.dumps(value)})

    async def update(self, values: Mapping[str, Any]) -> None:
        """Set several keys at once (one transaction)."""
        await self._do("state.update", self._write, {k: _serde.dumps(v) for k, v in values.items()})

    async def delete(self, key: str) -> None:
        await self._do(f"state.delete:{key}", self._write, {key: None})

    async def _read(self, keys: list[str] | None) -> dict[str, Any]:
        sql, params = "SELECT key, value FROM mem_run_state WHERE run_id=?", [self.run_id]
        if keys is not None:
            sql += f" AND key IN ({','.join('?' * len(keys))})"
            params += keys
        rows = await self.memory.db.fetchall(sql + " ORDER BY key", params)
        return {r[0]: _serde.loads(r[1]) for r in rows}

    async def _write(self, values: Mapping[str, str | None]) -> None:
        now = time.time()
        async with self.memory.db.transaction() as tx:
            for key, text in values.items():
                if text is None:
                    await tx.execute("DELETE FROM mem_run_state WHERE run_id=? AND key=?", (self.run_id, key))
                else:
                    await tx.execute(
                        "INSERT INTO mem_run_state (run_id, key, value, updated_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                        (self.run_id, key, text, now),
                    )


def run_state(ctx: StepContext) -> RunState:
    """The state of the step's run::

    @wf.step
    async def plan(ctx, input):
        state = podium.memory.run_state(ctx)
        await state.set("budget", 120)

    @wf.step
    async def spend(ctx, plan):
        budget = await podium.memory.run_state(ctx).get("budget")
    """
    return RunState(memory_for(store_of(ctx)), ctx.run_id, ctx)

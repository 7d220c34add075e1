"""The executor depends on ports, not on the client: here it drives runs for a fake host (a plain
object that implements :class:`podium.engine.ports.RunHost`), as a worker test would."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import Any

from podium import RunRecord, RunStatus, StepContext, Workflow
from podium.engine.executor import RunExecutor
from podium.engine.ports import RunHost
from podium.engine.prompts import PromptLibrary
from podium.engine.registry import WorkflowRegistry
from podium.engine.versions import Deployments
from podium.governance.service import Governance
from podium.records import Event, EventType
from podium.storage import Store
from podium.storage.memory import MemoryStore


@dataclass
class FakeHost:
    store: Store
    owner: str = "fake:1:ns:0"
    lease_seconds: float = 60.0
    labels: list[str] | None = None
    listeners: list[Any] = field(default_factory=list)
    thread_pool: concurrent.futures.Executor = field(default_factory=concurrent.futures.ThreadPoolExecutor)
    woken: dict[str, float] = field(default_factory=dict)
    emitted: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.governance = Governance(self.store, audit=True)
        self.prompt_library = PromptLibrary(self.store, self.governance)
        self.deployments = Deployments(self.store, self.governance, WorkflowRegistry())

    def kind_limit(self, kind: str) -> asyncio.Semaphore | None:
        return None

    def wake_at(self, run_id: str, when: float) -> None:
        self.woken[run_id] = when

    async def run_child(self, parent_run_id: str, wf: Workflow, child_input: Any, key: str, step_id: str) -> RunRecord:
        raise AssertionError("no child runs here")

    async def _publish(self, topic: str, payload: Any, *, origin: str | None = None) -> None:
        self.emitted.append((topic, payload))


async def _start(host: FakeHost, wf: Workflow, run_id: str) -> RunExecutor:
    wf.freeze()
    now = time.time()
    run = RunRecord(id=run_id, workflow=wf.name, version=wf.version, status=RunStatus.RUNNING, input="null",
                    created_at=now, started_at=now, owner=host.owner, lease_expires_at=now + 60)  # fmt: skip
    first = Event(run_id=run_id, seq=1, type=EventType.RUN_STARTED, ts=now, data="{}")
    assert await host.store.create_run(run, [first])
    port: RunHost = host  # the fake satisfies the port (checked by mypy)
    return RunExecutor(port, wf, run, [first])


async def test_an_executor_runs_a_workflow_for_a_fake_host():
    wf = Workflow("fake")

    @wf.step
    async def a(ctx: StepContext):
        await ctx.emit("greeted", {"to": "ann"})
        return 2

    @wf.step
    def b(a):  # a sync step runs on the host's thread pool
        return a * 21

    host = FakeHost(MemoryStore())
    await host.store.open()
    ex = await _start(host, wf, "r1")
    await ex.drive()
    run = await host.store.get_run("r1")
    assert run is not None and run.status is RunStatus.COMPLETED and run.output == "42"
    assert host.emitted == [("greeted", {"to": "ann"})]
    audit = [e.action for e in await host.store.list_audit() if e.action != "audit.anchor"]
    assert audit == ["run.end"]  # anchored through the port


async def test_a_parked_run_asks_its_host_to_wake_it():
    wf = Workflow("nap")

    @wf.step
    async def nap(ctx: StepContext):
        await ctx.sleep(60)

    host = FakeHost(MemoryStore())
    await host.store.open()
    ex = await _start(host, wf, "r2")
    await ex.drive()
    run = await host.store.get_run("r2")
    assert run is not None and run.status is RunStatus.WAITING
    assert host.woken["r2"] == run.wake_at and run.wake_at > time.time() + 50

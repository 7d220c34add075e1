"""Podium's benchmark workloads run on the anchor frameworks, for side-by-side figures.

    python bench/anchors.py                      # a table
    python bench/anchors.py --json               # one JSON object per line
    python bench/anchors.py --frameworks langgraph --only chain durable_chain

The anchors are not Podium dependencies (they are big); install the ones you want to compare:

    pip install langgraph langgraph-checkpoint-sqlite          # LangGraph (~8 s, ~60 MB)

    python -m venv --system-site-packages /tmp/prefect-venv    # Prefect: its own venv, as it pulls ~60
    /tmp/prefect-venv/bin/pip install prefect "fastapi<0.155"  # packages (~165 MB); prefect 3.8.8's server
    /tmp/prefect-venv/bin/python bench/anchors.py --frameworks prefect   # breaks on fastapi>=0.155

An anchor that is not installed is skipped with a printed line; so is a workload that fails (with the
error) or runs over --budget seconds. The workloads are those of bench/run.py, and each row carries the
floor that bench/run.py measures (its own functions), taken in the same run:

  chain          200 no-op steps in a line, nothing persisted
                   LangGraph: StateGraph of 200 async nodes START -> s0 -> ... -> s199 -> END, no checkpointer
                   Prefect:   an async flow awaiting 200 async no-op tasks in turn
  fanout         one step fans out to 200 parallel no-op steps, then a join
                   LangGraph: node -> conditional edge returning 200 Send("work", ...) -> join (list reducer)
                   Prefect:   an async flow gathering 200 async no-op task calls, then a join task
  concurrent_io  200 concurrent runs of 5 steps that each await asyncio.sleep(0.02); the ideal is 0.1 s
                   LangGraph: asyncio.gather of 200 ainvoke of a 5-node graph
                   Prefect:   asyncio.gather of 200 calls of an async flow of 5 tasks
  durable_chain  the 200-step chain with a checkpoint on SQLite after each step
                   LangGraph: AsyncSqliteSaver on a temp file, a new thread_id per run; durability="sync"
                     (each superstep's checkpoint is committed before the next starts, as in Podium);
                     durable_chain_async is LangGraph's default, durability="async" (written in the background)
                   Prefect:   the chain's tasks with persist_result=True (see below)
  startup        importing the framework in a fresh process (`python -c "import langgraph.graph"`,
                 `python -c "import prefect"`); floor: `python -c pass`

Fairness: what each persists per step differs.
  Podium     one event row per step (~100 bytes; one INSERT, its own transaction), WAL with
             synchronous=NORMAL: no fsync per commit.
  LangGraph  per superstep, a writes row and a checkpoint row whose msgpack blob holds the version of
             every channel seen so far: it grows with the graph (~14 KB on average, 28 KB at the end of
             the 200-node chain, ~3 MB per run); two commits, WAL with SQLite's default synchronous=FULL
             (an fsync of the WAL per commit; NORMAL makes it ~35% faster here).
  Prefect    every flow and task run, in-memory ones included, is reported to its API (a temporary local
             server in a subprocess, with no PREFECT_API_URL set) and recorded in that server's SQLite
             database; persist_result=True adds a result file per task. No network is needed: this script
             points PREFECT_HOME at a temporary folder and turns analytics off, so nothing leaves the
             machine or touches ~/.prefect. The first run, which starts the server, is not timed. On this
             machine its server answers 503 under the 200 concurrent flow runs of concurrent_io.
Each figure is the best of several repeats, to keep the machine's noise out of it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import json
import operator
import os
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import (  # the floors, measured the same way as for Podium's own figures
    N,
    best,
    floor_chain,
    floor_concurrent_io,
    floor_fanout,
    floor_sqlite,
)

WORKLOADS = ["chain", "fanout", "concurrent_io", "durable_chain", "startup"]
Timer = Callable[[], Awaitable[float]]
# A workload: its name, and what measures it (one or more rows). An anchor returns the ones wanted.
Workloads = list[tuple[str, Callable[[], Awaitable[list[dict[str, Any]]]]]]


def _timer(fn: Callable[[], Awaitable[Any]]) -> Timer:
    async def once() -> float:
        t = time.perf_counter()
        await fn()
        return time.perf_counter() - t

    return once


def _row(
    framework: str,
    workload: str,
    n: int,
    seconds: float,
    per_step: float,
    floor: float | None,
    **extra: Any,
) -> dict[str, Any]:
    row = {
        "framework": framework,
        "workload": workload,
        "n": n,
        "seconds": round(seconds, 4),
        "per_step_us": round(per_step * 1e6, 1),
        "floor_per_step_us": None if floor is None else round(floor * 1e6, 1),
    }
    row.update(extra)
    return row


def _startup(framework: str, code: str, repeats: int) -> dict[str, Any]:
    env = dict(os.environ)

    def timed(cmd: list[str]) -> float:
        out = []
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
            out.append(time.perf_counter() - t)
        return min(out)

    timed([sys.executable, "-c", code])  # a first import may compile .pyc files: keep it out of the figure
    seconds = timed([sys.executable, "-c", code])
    floor = timed([sys.executable, "-c", "pass"])
    return _row(framework, "startup", 1, seconds, seconds, floor, command=f'python -c "{code}"')


async def _concurrent_io_row(framework: str, once: Timer, repeats: int, **extra: Any) -> dict[str, Any]:
    seconds = await best(once, max(3, repeats // 3))
    floor = await best(floor_concurrent_io, max(3, repeats // 3))
    return _row(
        framework,
        "concurrent_io",
        N * 5,
        seconds,
        seconds / (N * 5),
        floor / (N * 5),
        ideal_seconds=0.1,
        floor_seconds=round(floor, 4),
        **extra,
    )


async def _durable_row(
    framework: str, workload: str, once: Timer, repeats: int, folder: str, **extra: Any
) -> dict[str, Any]:
    runs: list[float] = []
    floors: list[float] = []
    for _ in range(repeats):  # interleave framework and floor so both see the same disk weather
        runs.append(await once())
        floors.append(floor_sqlite(folder))
    seconds, floor = min(runs), min(floors)
    return _row(
        framework, workload, N, seconds, seconds / N, floor / N, ratio=round(seconds / floor, 2), **extra
    )


# -- LangGraph --------------------------------------------------------------------------------------


class State(TypedDict, total=False):  # at module level: LangGraph resolves the annotations by name
    item: int
    results: Annotated[list[Any], operator.add]
    count: int


def langgraph_workloads(repeats: int, folder: str) -> Workloads:
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    fw = "langgraph"
    version = importlib.metadata.version("langgraph")
    limit: dict[str, Any] = {"recursion_limit": N + 10}  # supersteps; LangGraph < 1.0 defaults to 25

    async def noop(state: State) -> None:
        return None

    def line(node: Callable[[State], Awaitable[None]], n: int) -> StateGraph:
        g = StateGraph(State)
        prev = START
        for i in range(n):
            g.add_node(f"s{i}", node)
            g.add_edge(prev, f"s{i}")
            prev = f"s{i}"
        g.add_edge(prev, END)
        return g

    def fanout_graph(n: int = N) -> StateGraph:
        async def items(state: State) -> None:
            return None

        def spread(state: State) -> list[Any]:
            return [Send("work", {"item": i}) for i in range(n)]

        async def work(state: State) -> dict[str, Any]:
            return {"results": [None]}

        async def join(state: State) -> dict[str, Any]:
            return {"count": len(state["results"])}

        g = StateGraph(State)
        g.add_node("items", items)
        g.add_node("work", work)
        g.add_node("join", join)
        g.add_edge(START, "items")
        g.add_conditional_edges("items", spread, ["work"])
        g.add_edge("work", "join")
        g.add_edge("join", END)
        return g

    async def nap(state: State) -> None:
        await asyncio.sleep(0.02)

    async def chain() -> list[dict[str, Any]]:
        app = line(noop, N).compile()
        await app.ainvoke({}, limit)
        seconds = await best(_timer(lambda: app.ainvoke({}, limit)), repeats)
        floor = await best(floor_chain, repeats)
        return [_row(fw, "chain", N, seconds, seconds / N, floor / N, version=version)]

    async def fanout() -> list[dict[str, Any]]:
        app = fanout_graph().compile()
        out = await app.ainvoke({}, limit)
        assert out["count"] == N, out  # 200 branches ran and the join saw them all
        seconds = await best(_timer(lambda: app.ainvoke({}, limit)), repeats)
        floor = await best(floor_fanout, repeats)
        return [_row(fw, "fanout", N, seconds, seconds / N, floor / N, version=version)]

    async def concurrent_io() -> list[dict[str, Any]]:
        app = line(nap, 5).compile()

        async def many() -> None:
            await asyncio.gather(*(app.ainvoke({}, limit) for _ in range(N)))

        await many()
        return [await _concurrent_io_row(fw, _timer(many), repeats, version=version)]

    async def durable_chain() -> list[dict[str, Any]]:
        try:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
        except ImportError:
            _note(
                "langgraph durable_chain: skipped: langgraph-checkpoint-sqlite is not installed "
                "(pip install langgraph-checkpoint-sqlite)"
            )
            return []
        rows = []
        for durability, workload in (("sync", "durable_chain"), ("async", "durable_chain_async")):
            path = os.path.join(folder, f"langgraph-{durability}.db")
            async with AsyncSqliteSaver.from_conn_string(path) as saver:
                app = line(noop, N).compile(checkpointer=saver)

                async def run_once(app: Any = app, durability: str = durability) -> None:
                    config = {**limit, "configurable": {"thread_id": uuid.uuid4().hex}}  # a new run each time
                    await app.ainvoke({}, config, durability=durability)

                await run_once()
                cur = await saver.conn.execute("PRAGMA synchronous")
                synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get((await cur.fetchone())[0])
                rows.append(
                    await _durable_row(
                        fw,
                        workload,
                        _timer(run_once),
                        repeats,
                        folder,
                        version=version,
                        durability=durability,
                        sqlite_synchronous=synchronous,
                    )
                )
        return rows

    async def startup() -> list[dict[str, Any]]:
        return [_startup(fw, "import langgraph.graph", repeats)]

    return [
        ("chain", chain),
        ("fanout", fanout),
        ("concurrent_io", concurrent_io),
        ("durable_chain", durable_chain),
        ("startup", startup),
    ]


# -- Prefect ----------------------------------------------------------------------------------------


def prefect_workloads(repeats: int, folder: str) -> Workloads:
    # Offline and self-contained: a fresh home (settings, SQLite database, result files) in the temp
    # folder, no analytics, and never a configured remote API: with no PREFECT_API_URL Prefect starts a
    # temporary local server of its own. The console shows warnings only; the API still gets every log.
    os.environ.pop("PREFECT_API_URL", None)
    os.environ["PREFECT_HOME"] = os.path.join(folder, "prefect-home")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    os.environ["PREFECT_SERVER_LOGGING_LEVEL"] = "CRITICAL"

    from prefect import flow, task

    fw = "prefect"
    version = importlib.metadata.version("prefect")

    @task
    async def noop() -> None:
        return None

    @task(persist_result=True)
    async def noop_persisted() -> None:
        return None

    @task
    async def items() -> list[int]:
        return list(range(N))

    @task
    async def work(item: int) -> None:
        return None

    @task
    async def join(results: list[Any]) -> int:
        return len(results)

    @task
    async def nap() -> None:
        await asyncio.sleep(0.02)

    @flow
    async def chain_flow() -> None:
        for _ in range(N):
            await noop()

    @flow
    async def durable_chain_flow() -> None:
        for _ in range(N):
            await noop_persisted()

    @flow
    async def fanout_flow() -> int:
        results = await asyncio.gather(*(work(i) for i in await items()))
        return await join(list(results))

    @flow
    async def sleep_flow() -> None:
        for _ in range(5):
            await nap()

    server_up = False

    async def warm() -> None:
        nonlocal server_up
        if not server_up:  # the first flow run starts the temporary server: keep that out of the figures
            t = time.perf_counter()
            await chain_flow()
            server_up = True
            _note(f"prefect: temporary local server up, first run done, in {time.perf_counter() - t:.1f} s")

    async def chain() -> list[dict[str, Any]]:
        await warm()
        seconds = await best(_timer(chain_flow), repeats)
        floor = await best(floor_chain, repeats)
        return [_row(fw, "chain", N, seconds, seconds / N, floor / N, version=version)]

    async def fanout() -> list[dict[str, Any]]:
        await warm()
        assert await fanout_flow() == N
        seconds = await best(_timer(fanout_flow), repeats)
        floor = await best(floor_fanout, repeats)
        return [_row(fw, "fanout", N, seconds, seconds / N, floor / N, version=version)]

    async def concurrent_io() -> list[dict[str, Any]]:
        await warm()

        async def many() -> None:
            await asyncio.gather(*(sleep_flow() for _ in range(N)))

        await many()
        return [await _concurrent_io_row(fw, _timer(many), repeats, version=version)]

    async def durable_chain() -> list[dict[str, Any]]:
        await warm()
        await durable_chain_flow()
        return [
            await _durable_row(
                fw,
                "durable_chain",
                _timer(durable_chain_flow),
                repeats,
                folder,
                version=version,
                persist_result=True,
            )
        ]

    async def startup() -> list[dict[str, Any]]:
        return [_startup(fw, "import prefect", repeats)]

    return [
        ("chain", chain),
        ("fanout", fanout),
        ("concurrent_io", concurrent_io),
        ("durable_chain", durable_chain),
        ("startup", startup),
    ]


# -- driver -----------------------------------------------------------------------------------------

ANCHORS: dict[str, tuple[str, str, Callable[[int, str], Workloads]]] = {
    # name: (module that must be importable, install hint, its workloads)
    "langgraph": ("langgraph", "pip install langgraph langgraph-checkpoint-sqlite", langgraph_workloads),
    "prefect": ("prefect", 'pip install prefect "fastapi<0.155", in a venv of its own', prefect_workloads),
}


_notes_to_stderr = False


def _note(message: str) -> None:
    """A line for the reader (a skip, a failure); on stderr under --json so stdout stays JSON lines."""
    print(message, file=sys.stderr if _notes_to_stderr else sys.stdout, flush=True)


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    global _notes_to_stderr
    _notes_to_stderr = args.json
    rows: list[dict[str, Any]] = []
    wanted = set(args.only or WORKLOADS)
    for name in args.frameworks or list(ANCHORS):
        module, hint, workloads = ANCHORS[name]
        if importlib.util.find_spec(module) is None:
            _note(f"{name}: not installed, skipped ({hint})")
            continue
        with tempfile.TemporaryDirectory(prefix=f"podium-anchor-{name}-") as folder:
            try:
                todo = workloads(args.repeats, folder)
            except Exception as exc:  # an anchor that cannot even be set up (a broken install)
                _note(f"{name}: skipped: {type(exc).__name__}: {exc}")
                if args.verbose:
                    traceback.print_exc()
                continue
            for workload, measure in todo:
                if workload not in wanted:
                    continue
                t = time.perf_counter()
                try:
                    got = await asyncio.wait_for(measure(), args.budget)
                except TimeoutError:
                    _note(f"{name} {workload}: skipped: over the {args.budget:.0f} s budget")
                    continue
                except Exception as exc:
                    took = time.perf_counter() - t
                    _note(f"{name} {workload}: failed after {took:.1f} s: {type(exc).__name__}: {exc}")
                    if args.verbose:
                        traceback.print_exc()
                    continue
                for row in got:
                    rows.append(row)
                    _emit(row, args.json)
    return rows


def _emit(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(row), flush=True)
        return
    keys = ("framework", "workload", "n", "seconds", "per_step_us", "floor_per_step_us")
    extra = {k: v for k, v in row.items() if k not in keys}
    floor = "-" if row["floor_per_step_us"] is None else f"{row['floor_per_step_us']:>9.1f}"
    print(
        f"{row['framework']:<10} {row['workload']:<20} n={row['n']:<6} {row['seconds']:>9.4f} s"
        f"  {row['per_step_us']:>9.1f} us/step  floor {floor} us  {json.dumps(extra) if extra else ''}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per workload; the best is kept")
    parser.add_argument("--only", nargs="*", choices=WORKLOADS, help="run only these workloads")
    parser.add_argument("--frameworks", nargs="*", choices=list(ANCHORS), help="run only these anchors")
    parser.add_argument(
        "--budget", type=float, default=300, help="seconds one workload may take before it is skipped"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of failures")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

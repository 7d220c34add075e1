"""The ``gc`` setting: while a client is open, the garbage collector's young threshold is raised
(podium/engine/gcpace.py), so that thousands of live runs are not walked every 700 allocations;
what the program set is its own, and the thresholds found come back when the last client closes.

The thresholds are the process's: each case runs in a fresh interpreter (a client another test
left open in this one would hold them raised)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from podium.engine.gcpace import YOUNG

PRELUDE = """
import asyncio, gc, json, sys
from podium import Client, Workflow
from podium.errors import ConfigError

def napping():
    wf = Workflow("napping")

    async def nap() -> None:
        await asyncio.sleep(0.001)

    wf.step(nap, id="a")
    wf.step(nap, id="b", needs=["a"])
    return wf

seen = []
DB = sys.argv[1]
gc.set_threshold(700, 10, 10)  # CPython's defaults, whatever the interpreter started with
"""


def run(tmp_path: Path, body: str, **env: str) -> dict:
    """Run ``body`` (inside ``async def main()``, ``seen`` a list to append to) in a fresh interpreter;
    returns ``{"seen": seen, "after": gc thresholds at the end}``."""
    script = PRELUDE + "async def main():\n" + textwrap.indent(textwrap.dedent(body), "    ") + (
        "\nasyncio.run(main())\nprint(json.dumps({'seen': seen, 'after': list(gc.get_threshold())}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, f"sqlite:///{tmp_path}"], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env}, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_open_client_raises_the_young_threshold_and_the_last_to_close_puts_it_back(tmp_path):
    out = run(tmp_path, """
        async with Client(DB + "/a.db") as a:
            seen.append(gc.get_threshold())
            async with Client(DB + "/b.db"):
                seen.append(gc.get_threshold())
            seen.append(gc.get_threshold())  # a is still open
            await a.run(napping())
    """)  # fmt: skip
    assert out["seen"] == [[YOUNG, 10, 10]] * 3
    assert out["after"] == [700, 10, 10]


def test_gc_python_leaves_the_collector_alone(tmp_path):
    out = run(tmp_path, """
        async with Client(DB + "/a.db"):
            seen.append(gc.get_threshold())
    """, PODIUM_GC="python")  # fmt: skip
    assert out == {"seen": [[700, 10, 10]], "after": [700, 10, 10]}


def test_a_threshold_the_program_set_higher_or_off_stays_its_own_and_a_change_while_open_is_not_put_back(tmp_path):
    out = run(tmp_path, """
        for young in (0, 50_000):
            gc.set_threshold(young, 5, 5)
            async with Client(DB + "/a.db"):
                seen.append(gc.get_threshold())
            seen.append(gc.get_threshold())
        gc.set_threshold(700, 10, 10)
        async with Client(DB + "/a.db"):
            gc.set_threshold(1234, 7, 7)
    """)  # fmt: skip
    assert out["seen"] == [[0, 5, 5], [0, 5, 5], [50_000, 5, 5], [50_000, 5, 5]]
    assert out["after"] == [1234, 7, 7]


def test_a_bad_gc_setting_is_refused_naming_it_before_the_store_is_opened(tmp_path):
    out = run(tmp_path, """
        try:
            await Client(DB + "/a.db").open()
        except ConfigError as exc:
            seen.append(str(exc))
    """, PODIUM_GC="fast")  # fmt: skip
    assert len(out["seen"]) == 1
    assert "gc (from $PODIUM_GC)" in out["seen"][0] and "'engine' or 'python'" in out["seen"][0]
    assert not (tmp_path / "a.db").exists()
    assert out["after"] == [700, 10, 10]


BURST = """
import os
def count(phase, info):
    if phase == "start" and info["generation"] == 0:
        seen.append(1)

wf = napping()
async with Client(DB + "/" + os.environ["BURST_DB"], max_concurrent_runs=1000) as c:
    await c.run(wf)
    gc.callbacks.append(count)
    handles = [await c.start(wf) for _ in range(1000)]
    for h in handles:
        await h.result()
    gc.callbacks.remove(count)
"""


def test_a_burst_of_runs_pays_far_fewer_collections_under_the_engine_pace(tmp_path):
    engine = len(run(tmp_path, BURST, BURST_DB="engine.db")["seen"])
    python = len(run(tmp_path, BURST, BURST_DB="python.db", PODIUM_GC="python")["seen"])
    assert python > 50  # the burst allocates tens of thousands of container objects
    assert engine * 10 < python, (engine, python)

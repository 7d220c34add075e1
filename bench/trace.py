"""What keeping prompts for the run trace costs: a step makes 200 durable model calls (a scripted
model: no network, so the engine's own cost is all there is) on a SQLite store, with
``trace_prompts`` on (each prompt redacted and stored with its call) and off, interleaved; medians.

    python bench/trace.py            # one JSON object per line
    python bench/trace.py --server postgresql://postgres@127.0.0.1:5432/postgres

Figures: microseconds per model call on and off, the difference, and the bytes a call's event holds
on and off. Reading the trace back (podium.engine.trace.run_trace) of that 200-call run is timed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _scratch import scratch_database

import podium
from podium import StepContext, ai
from podium.engine.trace import run_trace
from podium.models.testing import ScriptedModel

CALLS = 200
# About 2,000 characters, with an e-mail address, a phone number and a key for the redaction to find.
PROMPT = (
    "Customer ana.lopez@example.com (phone +44 20 7946 0958) asks about order 7; key sk-test-0123456789abcdef. "
    + "The order shipped on Monday and the carrier reports a delay at the depot. " * 25
)


async def one(url: str, on: bool) -> tuple[float, int, float]:
    os.environ["PODIUM_TRACE_PROMPTS"] = "true" if on else "false"
    model = ScriptedModel(default="Noted: your order is on its way.", provider="openai", name="gpt-4o-mini")
    wf = podium.Workflow(f"trace-bench-{on}")

    @wf.step
    async def talk(ctx: StepContext, input: dict) -> int:
        for _ in range(CALLS):
            await ai.llm(ctx, PROMPT, system="You help customers.", model=model)
        return CALLS

    async with podium.Client(url) as client:
        t0 = time.perf_counter()
        run_id = (await client.start(wf, {})).id
        await client.result(run_id, timeout=600)
        spent = (time.perf_counter() - t0) / CALLS * 1e6
        events = [e for e in await client.store.load_events(run_id) if e.step and e.step.startswith("talk/llm")]
        size = int(statistics.mean(len(e.data or "") for e in events))
        t1 = time.perf_counter()
        trace = await run_trace(client, run_id)
        read = (time.perf_counter() - t1) * 1000
        assert len(trace["calls"]) == CALLS
    return spent, size, read


async def main(server: str | None, repeats: int) -> None:
    on, off, size_on, size_off, reads = [], [], 0, 0, []
    for _ in range(repeats):
        for flag in (True, False):
            with scratch_database(server) as url:
                spent, size, read = await one(url, flag)
            (on if flag else off).append(spent)
            if flag:
                size_on, reads = size, [*reads, read]
            else:
                size_off = size
    store = "postgresql" if server and server.startswith("postgres") else "sqlite"
    a, b = statistics.median(on), statistics.median(off)
    for name, value, unit in (
        ("model_call_trace_on", a, "us/call"),
        ("model_call_trace_off", b, "us/call"),
        ("trace_overhead", a - b, "us/call"),
        ("event_bytes_trace_on", size_on, "bytes/call"),
        ("event_bytes_trace_off", size_off, "bytes/call"),
        ("read_trace_200_calls", statistics.median(reads), "ms"),
    ):
        print(json.dumps({"bench": "trace", "figure": name, "value": round(value, 1), "unit": unit, "store": store,
                          "calls": CALLS, "prompt_chars": len(PROMPT), "repeats": repeats}))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=None, help="a PostgreSQL admin URL (default: SQLite in a temporary folder)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    asyncio.run(main(args.server, args.repeats))

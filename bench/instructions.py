"""Instructions per run of the many_runs workload, counted by valgrind's callgrind: steadier than
timings, though not deterministic (the runs' 10 ms sleeps decide how writes group into
transactions, and that follows the machine's load: the same tree measured 1.233 and 1.287 M on a
busy machine). Compare trees one after the other, twice, and trust differences above ~5%.

    python bench/instructions.py                      # this tree
    python bench/instructions.py --tree /tmp/base     # another checkout (git worktree add --detach /tmp/base REV)

Runs N runs of two 10 ms sleeps started one by one, then awaited (as ``bench/run.py many_runs``),
on a new SQLite store, under callgrind at two sizes, and reports the difference in instructions
divided by the difference in runs (what one run costs, without imports and the store's opening).
Under callgrind a run takes ~50x longer, so fewer runs are alive at once than in many_runs: compare
trees with it, not with timings. ``rep stos`` counts one instruction per byte (SQLite zeroing its
pages): instructions are not time. Needs ``valgrind`` on the PATH. One JSON line with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

_WORKLOAD = """
import asyncio, sys, tempfile
sys.path.insert(0, sys.argv[2])
from run import sleep_workflow
from podium import Client
n = int(sys.argv[1])
async def main():
    folder = tempfile.mkdtemp()
    wf = sleep_workflow(2, 0.01)
    async with Client(f"sqlite:///{folder}/m.db", max_concurrent_runs=n) as c:
        await c.start(wf)
        handles = [await c.start(wf) for _ in range(n)]
        for h in handles:
            await h.result()
asyncio.run(main())
"""


def count(tree: str, n: int) -> int:
    """Instructions of the workload with ``n`` runs, importing podium from ``tree``."""
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "workload.py")
        with open(script, "w") as fh:
            fh.write(_WORKLOAD)
        env = {**os.environ, "PYTHONPATH": tree, "PYTHONHASHSEED": "0"}
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, script, str(n), os.path.join(tree, "bench")],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        said = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("=="))  # not valgrind's own
        raise SystemExit(f"the workload failed under valgrind (exit {done.returncode}):\n{said[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), help="the checkout to measure")
    parser.add_argument("--small", type=int, default=200, help="runs of the smaller measurement")
    parser.add_argument("--large", type=int, default=2000, help="runs of the larger measurement")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(args.tree, "podium", "__init__.py")):
        raise SystemExit(f"--tree {args.tree}: no podium package there; give a checkout of this repository")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind (Debian, Ubuntu)")
    small, large = count(args.tree, args.small), count(args.tree, args.large)
    per_run = (large - small) / (args.large - args.small)
    if args.json:
        print(json.dumps({"workload": "many_runs_instructions", "tree": args.tree, "instructions_per_run": round(per_run)}))
    else:
        print(f"{args.tree}: {per_run / 1e6:.3f} M instructions per run ({args.small} and {args.large} runs)")


if __name__ == "__main__":
    main()

"""Torture test: N worker processes share one store; runs are submitted; workers are killed with
SIGKILL at random and restarted, over and over. Then it checks that every run completed, that no
step that finished was executed again, and that no step ever ran on two workers at once.

    python bench/torture.py --runs 1000 --workers 3 [--server postgresql://postgres@127.0.0.1/postgres]

It works in a database of its own, created on --server and dropped at the end (--keep keeps it).
(The CI runs a smaller count through tests/test_torture.py.) Exit code 0 when every check holds,
including that workers really were killed (a run with no kill proves nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "crashapp"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(APP))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scratch import scratch_database, server_from_env  # noqa: E402

CONCURRENCY = 20


def _worker(db: str, log: str, lease: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PODIUM_DB": db, "PODIUM_TORTURE_LOG": log}
    return subprocess.Popen(
        [sys.executable, "-c", "from podium.cli import main; main()", "worker", "--concurrency", str(CONCURRENCY),
         "--lease-seconds", str(lease), "--grace", "1"],
        cwd=APP,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


async def torture(db: str, runs: int, workers: int, kill_every: float, lease: float, timeout: float) -> dict:
    from torture_flows import wf

    import podium

    log = tempfile.mktemp(prefix="podium-torture-", suffix=".log")
    procs = [_worker(db, log, lease) for _ in range(workers)]
    kills: dict[int, float] = {}
    started = time.monotonic()
    async with podium.Client(db, execute=False) as api:
        ids = [(await api.start(wf, i)).id for i in range(runs)]
        deadline = time.monotonic() + timeout
        kill_count = 0
        while True:
            done = len(await api.list(status=["completed"], limit=runs + 1))
            if done >= runs:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done}/{runs} runs completed within {timeout}s")
            await asyncio.sleep(kill_every * random.uniform(0.5, 1.5))
            victim = random.randrange(len(procs))
            proc = procs[victim]
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills[proc.pid] = time.time()
                kill_count += 1
            procs[victim] = _worker(db, log, lease)
        elapsed = time.monotonic() - started
        completions: dict[str, float] = {}
        for rid in ids:
            run = await api.get(rid)
            assert run.status is podium.RunStatus.COMPLETED, run
            assert json.loads(run.output) == 2 * (int(json.loads(run.input)) + 2) + 1
            for ev in (await api.history(rid)).events:
                if ev.type == "step_completed":
                    completions[f"{rid}:{ev.step}"] = ev.ts
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)
    return check(log, completions, kills, runs, kill_count, elapsed)


def check(
    log: str,
    completions: dict[str, float],
    kills: dict[int, float],
    runs: int,
    kill_count: int,
    elapsed: float,
) -> dict:
    attempts: dict[str, list[dict]] = defaultdict(list)
    open_attempts: dict[tuple[str, int], dict] = {}
    for line in Path(log).read_text().splitlines():
        kind, key, pid_text, ts_text = line.split()
        pid, ts = int(pid_text), float(ts_text)
        if kind == "start":
            att = {"pid": pid, "start": ts, "end": None}
            attempts[key].append(att)
            open_attempts[(key, pid)] = att
        else:
            open_attempts.pop((key, pid))["end"] = ts
    redone, overlaps = [], []
    for key, atts in attempts.items():
        done_at = completions.get(key)
        assert done_at is not None, f"{key} ran but never completed"
        for att in atts:
            # An attempt that never ended was killed: it lasted at most until its worker died.
            att["until"] = att["end"] if att["end"] is not None else kills.get(att["pid"], float("inf"))
            if att["start"] > done_at:
                redone.append(key)
        atts.sort(key=lambda a: a["start"])
        for prev, nxt in itertools.pairwise(atts):
            if nxt["start"] < prev["until"]:
                overlaps.append(key)
    missing = set(completions) - set(attempts)
    assert not missing, f"completed without running: {sorted(missing)[:5]}"
    retried = sum(1 for atts in attempts.values() if len(atts) > 1)
    result = {
        "runs": runs,
        "steps": len(completions),
        "kills": kill_count,
        "steps_attempted_more_than_once": retried,
        "finished_steps_redone": len(redone),
        "concurrent_executions": len(overlaps),
        "seconds": round(elapsed, 2),
    }
    os.unlink(log)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default=server_from_env(), help="PostgreSQL admin URL, or 'sqlite'")
    p.add_argument("--keep", action="store_true", help="keep the benchmark's database afterwards")
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--kill-every", type=float, default=0.5, help="seconds between kills, on average")
    p.add_argument("--lease", type=float, default=5.0, help="worker lease seconds")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--concurrency", type=int, default=20, help="runs each worker drives at once")
    p.add_argument("--step-sleep", type=float, default=0.2, help="longest sleep of a step, seconds")
    args = p.parse_args()
    os.environ["PODIUM_TORTURE_SLEEP"] = str(args.step_sleep)
    global CONCURRENCY
    CONCURRENCY = args.concurrency
    with scratch_database(args.server, keep=args.keep) as db:
        result = asyncio.run(torture(db, args.runs, args.workers, args.kill_every, args.lease, args.timeout))
    killed = result["kills"] > 0 or args.kill_every <= 0
    result["ok"] = result["finished_steps_redone"] == 0 and result["concurrent_executions"] == 0 and killed
    if not killed:
        result["problem"] = "no worker was killed: the runs finished before the first kill; raise --runs or lower --kill-every"
    print(json.dumps(result))
    ok = result["ok"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

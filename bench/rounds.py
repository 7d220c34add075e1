"""bench/run.py in several fresh processes: medians with their spread, optionally interleaved with an
older commit.

    python bench/rounds.py --rounds 5 --against HEAD~5 --only chain durable_chain --repeats 3

Each round runs ``bench/run.py --json`` in a new process (within one process, a figure is the best
of its ``--repeats``). For every workload and figure of its row, this reports the median over the
rounds, with the lowest and the highest. With ``--against REV`` (a commit, ``HEAD~3``, a tag), REV is
checked out in a temporary git worktree, removed at the end (also on Ctrl-C or an error), and every
round runs both trees' ``bench/run.py``, taking turns at going first so that both see the same
machine weather. Each child imports its own tree's ``podium`` (PYTHONPATH, checked before the
rounds); a workload the older tree does not have is reported as missing. Figures are comparable
only within one session, so the core count and load average are printed beside them.

Output: a table, or with ``--json`` one line per workload, figure and side::

    {"workload": "chain", "figure": "per_step_us", "side": "now", "median": 4.3, "min": 4.2,
     "max": 4.5, "rounds": 5, "rev": "ef46db9"}

(``"missing": true`` and null figures for a side without it). Counts (n, failures, completed) are
not figures: they must be the same in every round and on both sides, and are reported if not.
With ``--json`` the context (machine, trees, progress) goes to stderr. A child that fails is
reported with the tail of its stderr; the other rounds still run, then the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
COUNTS = ("n", "failures", "completed")  # the work a row did, not how fast: the same in every round


@dataclass
class Side:
    name: str  # "now" or "base"
    tree: Path
    rev: str | None
    rows: list[dict[str, dict[str, Any]]] = field(default_factory=list)  # per round: workload -> row
    failures: list[str] = field(default_factory=list)


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _rev_now() -> str | None:
    """HEAD's short hash, with -dirty when tracked files have changed since."""
    try:
        rev = _git("rev-parse", "--short", "HEAD")
        return rev + "-dirty" if _git("status", "--porcelain", "--untracked-files=no") else rev
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout: the figures stand without a revision


@contextlib.contextmanager
def _worktree(rev: str) -> Iterator[Path]:
    """REV checked out in a temporary worktree, removed whatever happens."""
    with tempfile.TemporaryDirectory(prefix="podium-rounds-") as folder:
        path = Path(folder) / "tree"
        try:
            _git("worktree", "add", "--detach", str(path), rev)
            yield path / _git("rev-parse", "--show-prefix")  # where this tree sits in the repository
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                _git("worktree", "remove", "--force", str(path))
            _git("worktree", "prune")  # if the add was cut short, its record goes too


def _env(tree: Path) -> dict[str, str]:
    # Before the editable install's finder (which points at the main checkout), and before anything
    # the caller had on PYTHONPATH.
    paths = [str(tree), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _podium_of(tree: Path) -> str:
    """The podium that a child started as bench/run.py is in ``tree`` imports (checked, not assumed)."""
    done = subprocess.run(
        [sys.executable, "-c", "import podium; print(podium.__file__)"],
        cwd=tree / "bench",  # sys.path[0] of a script in bench/, as for run.py
        env=_env(tree),
        capture_output=True,
        text=True,
    )
    path = done.stdout.strip()
    if done.returncode != 0 or not Path(path).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"error: a child in {tree} imports podium from {path or done.stderr.strip()}")
    return path


def _run(side: Side, argv: list[str]) -> str:
    """One round of ``side``: its rows kept, a failure recorded. Returns how it went, for the log."""
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(side.tree / "bench" / "run.py"), "--json", *argv],
        cwd=side.tree,
        env=_env(side.tree),
        capture_output=True,
        text=True,
    )
    rows = {}
    for line in done.stdout.splitlines():
        with contextlib.suppress(ValueError):
            row = json.loads(line)
            if isinstance(row, dict) and "workload" in row:
                rows[row["workload"]] = row
    side.rows.append(rows)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        side.failures.append(f"round {len(side.rows)}, {side.name} (exit {done.returncode}):\n{tail}")
    failed = f" (failed, exit {done.returncode})" if done.returncode else ""
    return f"{side.name} {time.perf_counter() - t:.1f} s{failed}"


def _figure(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def summarize(sides: list[Side], workloads: list[str]) -> list[dict[str, Any]]:
    """One line per workload, figure and side: median, min and max over the rounds that have it."""
    lines = []
    for workload in workloads:
        names: dict[str, None] = {}  # the figures in the order the rows hold them, now's first
        for side in sides:
            for rows in side.rows:
                for k, v in rows.get(workload, {}).items():
                    if k != "workload" and k not in COUNTS and _figure(v):
                        names[k] = None
        for name in names:
            for side in sides:
                values = [
                    rows[workload][name] for rows in side.rows if _figure(rows.get(workload, {}).get(name))
                ]
                line: dict[str, Any] = {"workload": workload, "figure": name, "side": side.name}
                if values:
                    median = round(statistics.median(values), 6)
                    line.update(median=median, min=min(values), max=max(values), rounds=len(values))
                else:
                    line.update(median=None, min=None, max=None, rounds=0, missing=True)
                lines.append({**line, "rev": side.rev})
    return lines


def count_mismatches(sides: list[Side], workloads: list[str]) -> list[str]:
    """Counts that differ between rounds or between the sides: such figures measured different work."""
    out = []
    for workload in workloads:
        for count in COUNTS:
            seen = {}
            for side in sides:
                values = [rows[workload][count] for rows in side.rows if count in rows.get(workload, {})]
                if len(set(values)) > 1:
                    out.append(f"{workload}: {count} differs between {side.name}'s rounds: {values}")
                elif values:
                    seen[side.name] = values[0]
            if len(set(seen.values())) > 1:
                out.append(f"{workload}: {count} differs between the sides: {seen}")
    return out


def _num(v: float) -> str:
    return f"{v:.6g}"


def _table(lines: list[dict[str, Any]], out: TextIO) -> None:
    now = {(x["workload"], x["figure"]): x for x in lines if x["side"] == "now"}
    base = {(x["workload"], x["figure"]): x for x in lines if x["side"] == "base"}

    def cell(x: dict[str, Any] | None) -> str:
        if x is None or x.get("missing"):
            return "missing"
        return f"{_num(x['median'])} [{_num(x['min'])}-{_num(x['max'])}]"

    if not now:
        return
    header = f"{'workload':<20} {'figure':<26} {'now median [min-max]':<28}"
    print(header + (f" {'base median [min-max]':<28} change" if base else ""), file=out)
    for key, x in now.items():
        row = f"{key[0]:<20} {key[1]:<26} {cell(x):<28}"
        if base:
            b = base.get(key)
            change = "-"
            if b and not b.get("missing") and not x.get("missing") and b["median"]:
                change = f"{(x['median'] - b['median']) / b['median'] * 100:+.1f}%"
            row += f" {cell(b):<28} {change}"
        print(row, file=out)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per side (default 5)")
    parser.add_argument("--against", metavar="REV", help="interleave with this git revision's bench/run.py")
    parser.add_argument("--repeats", type=int, help="passed to bench/run.py (its default: 7)")
    parser.add_argument("--many", type=int, help="passed to bench/run.py (its default: 10,000)")
    parser.add_argument("--only", nargs="+", metavar="W", help="passed to bench/run.py (default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON object per figure and side")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    # SIGTERM unwinds like Ctrl-C, so the worktree is removed and the running child killed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    argv = ["--only", *args.only] if args.only else []  # what is not given, run.py decides
    for flag, value in (("--repeats", args.repeats), ("--many", args.many)):
        argv += [] if value is None else [flag, str(value)]
    info = sys.stderr if args.json else sys.stdout

    def say(text: str) -> None:
        print(text, file=info, flush=True)

    say(f"machine: {os.cpu_count()} cores, load average {_load()} (1, 5, 15 min) at the start")
    with contextlib.ExitStack() as stack:
        sides = [Side("now", ROOT, _rev_now())]
        if args.against:
            try:
                rev = _git("rev-parse", "--short", "--verify", f"{args.against}^{{commit}}")
                sides.append(Side("base", stack.enter_context(_worktree(rev)), rev))
            except subprocess.CalledProcessError as exc:
                raise SystemExit(
                    f"error: --against {args.against!r} is not a commit of this repository ({exc.stderr.strip()}); "
                    "give a commit, a tag or HEAD~N"
                ) from None
        for side in sides:
            if not (side.tree / "bench" / "run.py").is_file():
                raise SystemExit(f"error: {side.rev or side.tree} has no bench/run.py")
            podium = _podium_of(side.tree)
            # A fresh checkout has no bytecode yet: compiled now, not in the first round's startup.
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(side.tree / "podium")], capture_output=True
            )
            say(f"{side.name}: {side.tree} ({side.rev or 'no git revision'}), podium from {podium}")
        say(f"each round: bench/run.py --json {' '.join(argv)}".rstrip())
        for i in range(args.rounds):
            order = sides[::-1] if i % 2 == 0 else sides  # who goes first, in turns
            took = [_run(side, argv) for side in order]
            say(f"round {i + 1}/{args.rounds}: {', '.join(took)}")

    now = sides[0]
    workloads = list(args.only or dict.fromkeys(w for side in sides for rows in side.rows for w in rows))
    lines = summarize(sides, workloads)
    if args.json:
        for line in lines:
            print(json.dumps(line), flush=True)
    else:
        _table(lines, sys.stdout)
    say(f"machine: load average {_load()} at the end")

    problems = [f"failed: {f}" for side in sides for f in side.failures]
    problems += [
        f"{w}: not measured by the current tree" for w in workloads if not any(w in r for r in now.rows)
    ]
    for text in count_mismatches(sides, workloads):
        print(f"warning: {text}", file=sys.stderr)
    for text in problems:
        print(text, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted (the temporary worktree, if any, is removed)", file=sys.stderr)
        sys.exit(130)

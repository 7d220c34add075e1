"""The behaviour digest of a Python workflow (podium/engine/behaviour.py): what its steps depend on
beyond their source text. The same code gives the same digest in any process and from any folder;
a change to anything a step reads gives another one, while the snapshot stays the same."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import podium
from podium.engine.behaviour import behaviour_digest
from podium.engine.loading import load_workflow
from podium.engine.versions import definition_hash

MODULE = """\
import dataclasses
import enum
import functools

from podium import Workflow

LIMIT = 3
TABLE = {{"x": [1, 2.5, None], "y": frozenset({{"p", "q", "r"}})}}


class Tone(enum.Enum):
    CALM = {tone}


@dataclasses.dataclass(frozen=True)
class Target:
    to: str = {target!r}

    def address(self):
        return countdown(LIMIT) + self.to


SETTINGS = Target()


def countdown(n):  # calls itself: followed once
    return "" if n <= 0 else str(n) + countdown(n - 1)


def odd(n):  # these two call each other
    return n > 0 and even(n - 1)


def even(n):
    return n == 0 or odd(n - 1)


CHECKS = {{odd, even}}  # a set of functions: its order differs between processes


def logged(fn):
    @functools.wraps(fn)
    async def inner(*args, **kwargs):
        return await fn(*args, **kwargs)

    return inner


wf = Workflow("digest")


@wf.step
@logged
async def send(ctx, input):
    return [SETTINGS.address(), Target().address(), Tone.CALM.name, sorted(TABLE), all(c(4) for c in CHECKS), __file__]
"""


def _write(folder: Path, tone: int = 1, target: str = "a") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "digestmod.py"
    path.write_text(MODULE.format(tone=tone, target=target))
    return path


def _digest_elsewhere(folder: Path, seed: str) -> str:
    code = str(Path(podium.__file__).parent.parent)
    script = "import digestmod\nfrom podium.engine.behaviour import behaviour_digest\nprint(behaviour_digest(digestmod.wf))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), code]), "PYTHONHASHSEED": seed}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_same_module_has_the_same_digest_from_any_folder_process_and_hash_seed(tmp_path: Path) -> None:
    """Sets of functions, functions that call themselves or each other, a decorator from another
    module, a dataclass instance, an enum and ``__file__`` (a path: left out) give one digest
    wherever the module is imported from, as a file or by module name."""
    here = load_workflow(f"{_write(tmp_path / 'a')}:wf")
    digest = behaviour_digest(here)
    _write(tmp_path / "b")
    assert {_digest_elsewhere(tmp_path / "b", seed) for seed in ("0", "1", "2")} == {digest}


@pytest.mark.parametrize("changed", [{"tone": 2}, {"target": "attacker"}])
def test_a_changed_value_a_step_reaches_changes_the_digest_not_the_snapshot(tmp_path: Path, changed: dict) -> None:
    """Through a method of a class of the same module (a dataclass's default, read via an instance
    a module constant holds) and through an enum member's value."""
    deployed = load_workflow(f"{_write(tmp_path / 'deployed')}:wf")
    mine = load_workflow(f"{_write(tmp_path / 'mine', **changed)}:wf")
    assert definition_hash(mine) == definition_hash(deployed)
    assert behaviour_digest(mine) != behaviour_digest(deployed)


def test_functions_that_call_each_other_encode_the_same_whichever_is_met_first(tmp_path: Path) -> None:
    """A set of mutually recursive functions is read in an order that differs between processes
    (and between runs of the test suite); each function's text must not depend on it. An encoding
    holding a cycle was reused inside the other member, so the two orders gave two digests."""
    from podium.engine.behaviour import _Encoder

    mod = load_workflow(f"{_write(tmp_path / 'a')}:wf")
    home = mod.steps["send"].fn.__wrapped__.__globals__
    odd, even = home["odd"], home["even"]
    one, other = _Encoder(), _Encoder()
    first = sorted([one.value(odd, 0, home), one.value(even, 0, home)])
    second = sorted([other.value(even, 0, home), other.value(odd, 0, home)])
    assert first == second

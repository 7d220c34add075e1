"""Look-alikes of a deployed Python module that the behaviour digest took for it (seventh session's
attacker review of podium/engine/behaviour.py), and honest code whose digest differed between
folders or processes.

Each look-alike's steps read exactly like the deployed module's (the same snapshot), and what they
read differs somewhere the digest did not look: an object it named by its class only (a namespace,
an object of the module's own class, a compiled pattern, a path, a decimal...), a metaclass, a
module-local ``__builtins__``, a module ``__getattr__``, ``globals()[...]``, the types the input is
validated against, or a value past the digest's budget. Each such look-alike had the deployed
version's digest, so in a store with users its runs got the deployed workflow's own policy."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_governance_deployed import _users, shared  # noqa: F401 (a fixture)

import podium
from podium import Client, Policy, RunFailed
from podium.engine.behaviour import PYTHON, UNBOUNDED, behaviour_digest, matches
from podium.engine.loading import load_workflow
from podium.engine.versions import definition_hash

STEP = """
wf = Workflow("drafts")


@wf.step
def send(ctx, input):
    return {body}
"""

#: name -> (module-level definitions with {v}, what the step returns, the deployed v, the look-alike's v)
LOOK_ALIKES: dict[str, tuple[str, str, str, str]] = {
    "a namespace's attribute": ("import types\nCFG = types.SimpleNamespace(to={v!r})", "CFG.to", "a", "attacker"),
    "an object of the module's own class": (
        "class Route:\n    def __init__(self, to):\n        self.to = to\n\n\nROUTE = Route({v!r})", "ROUTE.to", "a", "attacker"
    ),
    "an object with slots of the module's own class": (
        "class Route:\n    __slots__ = ('to',)\n\n    def __init__(self, to):\n        self.to = to\n\n\nROUTE = Route({v!r})",
        "ROUTE.to", "a", "attacker",
    ),
    "a compiled pattern": ("import re\nALLOWED = re.compile({v!r})", "bool(ALLOWED.fullmatch(str(input)))", "acct-[0-9]+", ".*"),
    "a path": ("import pathlib\nOUT = pathlib.Path({v!r})", "str(OUT / 'report.csv')", "/srv/reports", "/tmp/mine"),
    "a decimal limit": ("import decimal\nLIMIT = decimal.Decimal({v!r})", "LIMIT", "100", "1000000"),
    "a datetime cutoff": ("import datetime\nCUTOFF = datetime.date.fromisoformat({v!r})", "CUTOFF", "2026-01-01", "2999-01-01"),
    "a bytearray key": ("KEY = bytearray({v!r}.encode())", "bytes(KEY)", "k1", "k2"),
    "a read-only mapping": ("import types\nCFG = types.MappingProxyType({{'to': {v!r}}})", "CFG['to']", "a", "attacker"),
    "a defaultdict's default": ("import collections\nLIMITS = collections.defaultdict(lambda: {v})", "LIMITS['x']", "100", "10**9"),
    "a metaclass": (
        "class Meta(type):\n    def __getattribute__(cls, n):\n        return {v!r} if n == 'TO' else type.__getattribute__(cls, n)\n\n\n"
        "class Cfg(metaclass=Meta):\n    TO = 'a'",
        "Cfg.TO", "a", "attacker",
    ),
    "a module-local __builtins__": (
        "import builtins as _b\n\n__builtins__ = dict(vars(_b), min=_b.min if {v!r} == 'a' else (lambda a, b: a))",
        "min(input, 100)", "a", "x",
    ),
    "a module __getattr__": ("import sys\n\n\ndef __getattr__(name):\n    return {v!r}", "sys.modules[__name__].TO", "a", "attacker"),
    "a name read through globals()": ("TO = {v!r}", "globals()['T' + 'O']", "a", "attacker"),
    "a constant past a large table": (
        "RATES = {{" + ",".join(f"'c{i}': {i}" for i in range(100_001)) + "}}\nZLIMIT = {v}",
        "RATES.get(input, 0) < ZLIMIT", "100", "10**9",
    ),
}
TYPED = '''
from pydantic import BaseModel, Field

from podium import Workflow


class Order(BaseModel):
    amount: int = Field(le={order_le})


class Capped(BaseModel):
    value: int = Field(le={param_le})


wf = Workflow("drafts", input=Order)


@wf.step
def amount(ctx, input: Order):
    return {{"value": input.amount}}


@wf.step
def send(ctx, amount: Capped):
    return amount.value
'''


def _write(folder: Path, text: str, name: str = "flowmod") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(text)
    return path


def _module(folder: Path, what: str, deployed: bool) -> str:
    defs, body, theirs, mine = LOOK_ALIKES[what]
    head = "from podium import Workflow\n\n" if "__builtins__" not in defs else ""
    text = head + defs.format(v=theirs if deployed else mine) + "\n" + STEP.format(body=body)
    if "__builtins__" in defs:  # set before anything is imported, so that the step is defined under it
        text = defs.format(v=theirs if deployed else mine) + "\nfrom podium import Workflow\n" + STEP.format(body=body)
    return f"{_write(folder, text)}:wf"


@pytest.mark.parametrize("what", list(LOOK_ALIKES))
def test_attack_a_look_alike_the_digest_takes_for_the_deployed_module(tmp_path: Path, what: str) -> None:
    """The look-alike's steps read like the deployed ones (the same snapshot); its digest must not be
    the deployed one's, or, where the digest cannot hold all the code reads (past its budget), the
    digest must match nothing. Each case matched before."""
    deployed = load_workflow(_module(tmp_path / "deployed", what, deployed=True))
    mine = load_workflow(_module(tmp_path / "mine", what, deployed=False))
    assert definition_hash(mine) == definition_hash(deployed), what
    meta = {"behaviour": {PYTHON: behaviour_digest(deployed)}}
    assert not matches(mine, meta), f"{what}: the look-alike is taken for the deployed module"


@pytest.mark.parametrize("changed", [{"order_le": 10**9}, {"param_le": 10**9}])
def test_attack_a_look_alike_whose_input_is_validated_more_loosely(tmp_path: Path, changed: dict[str, int]) -> None:
    """The deployed workflow refuses an order over 1000 (its input type) or an amount over 10 at its
    second step (that parameter's type); the look-alike, reading the same, accepts any: the types a run's values are
    validated against were not in the digest (the snapshot names the input type by name only)."""
    text = textwrap.dedent(TYPED)
    deployed = load_workflow(f"{_write(tmp_path / 'deployed', text.format(order_le=1000, param_le=10))}:wf")
    mine = load_workflow(f"{_write(tmp_path / 'mine', text.format(**{'order_le': 1000, 'param_le': 10, **changed}))}:wf")
    assert definition_hash(mine) == definition_hash(deployed)
    assert not matches(mine, {"behaviour": {PYTHON: behaviour_digest(deployed)}})


HONEST = '''
import os
import pathlib
import re
import types

from pydantic import BaseModel, Field

from podium import Workflow

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = pathlib.Path(__file__).parent / "rates.csv"
ACCOUNTS = {{"acct-" + str(i) for i in range({n})}}
ALLOWED = re.compile("acct-[0-9]+")
CFG = types.SimpleNamespace(to="a", retries=3)


class Route:
    def __init__(self, to):
        self.to = to


ROUTE = Route("b")


class Order(BaseModel):
    amount: int = Field(le=1000)


wf = Workflow("honest", input=Order)


@wf.step
def send(ctx, input: Order):
    return [HERE, str(DATA), input.amount in ACCOUNTS, ALLOWED.pattern, CFG.to, ROUTE.to]
'''


def _digest_elsewhere(folder: Path, seed: str) -> str:
    code = str(Path(podium.__file__).parent.parent)
    script = "import honestmod\nfrom podium.engine.behaviour import behaviour_digest\nprint(behaviour_digest(honestmod.wf))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), code]), "PYTHONHASHSEED": seed}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_honest_code_has_one_digest_from_any_folder_and_process(tmp_path: Path) -> None:
    """What denied honest runs: a path a module builds from its ``__file__`` (another in each folder
    the release is installed in) and a set of 250,000 account names (past the budget, cut where the
    hash seed's order put it: another digest in each process). Now the module's folder is read as
    ``<module folder>``, and a table of plain data is read whole. The objects and types the digest
    now reads by value give one digest too."""
    text = textwrap.dedent(HONEST).format(n=250_000)
    here = load_workflow(f"{_write(tmp_path / 'a', text, 'honestmod')}:wf")
    digest = behaviour_digest(here)
    assert not digest.startswith(UNBOUNDED)
    _write(tmp_path / "elsewhere" / "b", text, "honestmod")
    assert {_digest_elsewhere(tmp_path / "elsewhere" / "b", seed) for seed in ("1", "2")} == {digest}


def test_a_digest_that_cannot_hold_what_the_code_reaches_matches_nothing(tmp_path: Path) -> None:
    """Sixteen functions that each call four others: following every path through them runs past
    the budget (cutting off what lies beyond). Such a digest vouches for nothing: it matches no
    recorded digest, its own included (its runs are held by ``*`` too, as the deployment warns)."""
    calls = "\n\n".join(
        f"def f{i}(x):\n    return 0 if x <= 0 else " + " + ".join(f"f{(i + j) % 16}(x - 1)" for j in range(1, 5))
        for i in range(16)
    )
    text = "from podium import Workflow\n\n" + calls + "\n" + STEP.format(body="f0(3)")
    wf = load_workflow(f"{_write(tmp_path, text)}:wf")
    digest = behaviour_digest(wf)
    assert digest.startswith(UNBOUNDED)
    assert not matches(wf, {"behaviour": {PYTHON: digest}})


async def test_attack_a_look_alike_with_a_namespace_of_its_own_gets_the_laxer_policy(shared: Any, tmp_path: Path) -> None:  # noqa: F811
    """End to end (memory, SQLite, PostgreSQL stores): ``drafts`` is deployed with its settings in a
    ``SimpleNamespace``; bob's module reads the same and holds another recipient. It ran under
    ``drafts``'s policy (the ``scripted`` provider ``*`` forbids); now it is held by ``*`` too."""
    text = textwrap.dedent('''
        import types

        from podium import Workflow, ai
        from podium.models import Response
        from podium.models.testing import ScriptedModel

        SETTINGS = types.SimpleNamespace(to={to!r})

        wf = Workflow("drafts")


        @wf.step
        async def send(ctx, input):
            answer = await ai.llm(ctx, "to " + SETTINGS.to, model=ScriptedModel(default=Response(text=SETTINGS.to)))
            return answer.text
    ''')
    root, bob = await _users(shared)
    async with Client(shared, token=root) as admin:
        await admin.set_policy("*", Policy(allowed_providers=["local"]))
        await admin.set_policy("drafts", Policy(allowed_providers=["local", "scripted"]))
        await admin.deploy(load_workflow(f"{_write(tmp_path / 'deployed', text.format(to='a'))}:wf"))
    async with Client(shared, token=bob) as c:
        assert await c.run(load_workflow(f"{_write(tmp_path / 'release', text.format(to='a'))}:wf"), None) == "a"
        mine = load_workflow(f"{_write(tmp_path / 'mine', text.format(to='attacker'))}:wf")
        with pytest.raises(RunFailed, match="may not call provider 'scripted'") as failed:
            await c.run(mine, None)
        assert "not deployed" in str(failed.value)
        # a new user's run-through: it is told why it is not the deployed version it reads like,
        # and how to start that one (it was told "not deployed" alone, of a deployed name)
        assert "its steps read like deployed version" in str(failed.value), failed.value
        assert "module constant, helper, default or closure value" in str(failed.value), failed.value
        assert "or start the deployed one by name: podium run drafts" in str(failed.value), failed.value

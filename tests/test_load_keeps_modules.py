"""A workflow file whose new version fails to import (a watched folder's edit with a syntax error,
or one raising) leaves the module loaded earlier under the same name in ``sys.modules``: the
failed load removed it, so what looks classes up by their module (``typing.get_type_hints`` of a
dataclass with postponed annotations, which validators use) failed for the workflow still served."""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

import pytest

from podium.engine.loading import load_workflow
from podium.errors import ConfigError

GOOD = '''from __future__ import annotations
import dataclasses
from podium import Workflow

@dataclasses.dataclass
class Order:
    sku: str
    qty: int

wf = Workflow("keeper")

@wf.step()
async def take(order: Order) -> int:
    return order.qty
'''


@pytest.mark.parametrize("broken", ["def f(:\n    pass\n", 'raise RuntimeError("half-edited")\n'])
def test_a_failed_reload_keeps_the_module_loaded_earlier(tmp_path: Path, broken: str):
    flow = tmp_path / "keeperflow.py"
    flow.write_text(GOOD)
    name = "podium_user_keeperflow"
    try:
        wf = load_workflow(f"{flow}:wf")
        earlier = sys.modules[name]
        order = vars(earlier)["Order"]
        assert dataclasses.is_dataclass(order) and wf.name == "keeper"
        flow.write_text(broken)
        with pytest.raises(ConfigError, match="keeperflow.py"):
            load_workflow(f"{flow}:wf")
        assert sys.modules.get(name) is earlier, "the failed load removed (or replaced) the module loaded earlier"
        assert typing.get_type_hints(order) == {"sku": str, "qty": int}
    finally:
        sys.modules.pop(name, None)


def test_a_failed_first_load_leaves_no_half_run_module(tmp_path: Path):
    flow = tmp_path / "halfflow.py"
    flow.write_text('raise RuntimeError("no config here")\n')
    with pytest.raises(ConfigError, match="halfflow.py:1"):
        load_workflow(f"{flow}:wf")
    assert "podium_user_halfflow" not in sys.modules

"""A workflow module that fails while it is imported is named at the user's line that failed, not
inside Python's library or an installed package it called."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from podium.engine.loading import load_workflow
from podium.errors import ConfigError


def _module(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(body))
    return path


async def test_asyncio_run_at_import_is_named_at_its_own_line(tmp_path: Path) -> None:
    path = _module(
        tmp_path,
        """\
        import asyncio
        from podium import Workflow
        wf = Workflow("x")

        async def main():
            return None

        coro = main()
        try:
            asyncio.run(coro)
        finally:
            coro.close()
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_workflow(f"{path}:wf")
    assert str(err.value).startswith(f"{path}:10: "), err.value
    assert "RuntimeError" in str(err.value)


def test_an_error_inside_the_standard_library_names_the_calling_line(tmp_path: Path) -> None:
    path = _module(
        tmp_path,
        """\
        import json
        from podium import Workflow
        wf = Workflow("x")
        settings = json.loads("{not json")
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_workflow(f"{path}:wf")
    assert str(err.value).startswith(f"{path}:4: "), err.value


def test_an_error_in_a_helper_module_of_the_user_names_that_module(tmp_path: Path) -> None:
    (tmp_path / "helper_for_flow.py").write_text("def boom():\n    return 1 / 0\n")
    path = _module(
        tmp_path,
        f"""\
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from helper_for_flow import boom
        from podium import Workflow
        wf = Workflow("x")
        boom()
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_workflow(f"{path}:wf")
    assert str(err.value).startswith(f"{tmp_path / 'helper_for_flow.py'}:2: "), err.value

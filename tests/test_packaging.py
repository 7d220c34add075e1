"""Package metadata that downstream tools read: typing marker, SPDX licence, classifiers, URLs."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_is_marked_typed_and_ships_the_marker() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert (ROOT / "podium" / "py.typed").exists()
    assert "py.typed" in meta["tool"]["setuptools"]["package-data"]["podium"]
    assert "Typing :: Typed" in meta["project"]["classifiers"]


def test_licence_is_an_spdx_expression_with_its_file() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # PEP 639, not the deprecated table
    assert project["license-files"] == ["LICENSE"] and (ROOT / "LICENSE").exists()
    assert {"Homepage", "Documentation", "Issues"} <= set(project["urls"])

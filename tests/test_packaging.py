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


def test_every_missing_dependency_hint_names_an_extra_that_exists() -> None:
    import re

    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = set()
    for path in (ROOT / "podium").rglob("*.py"):
        text = path.read_text()
        named |= set(re.findall(r"install_hint\('([a-z0-9_-]+)'\)", text))
        stale = re.findall(r"pip install 'podium\[([a-z0-9_-]+)\]'", text)
        assert not (set(stale) - extras), f"{path}: names extras that do not exist: {set(stale) - extras}"
    assert named and named <= extras, f"hints name extras that do not exist: {named - extras}"


def test_the_hint_is_a_command_that_installs_this_installation() -> None:
    from podium.errors import install_hint

    hint = install_hint("server")
    assert hint.startswith("pip install ") and "[server]'" in hint
    if "-e " in hint:  # a source checkout: the path is where pyproject.toml is
        path = hint.split("'")[1].rsplit("[", 1)[0]
        assert (Path(path) / "pyproject.toml").exists()

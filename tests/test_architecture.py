"""The package's shape, held by tests: rooms (engine, governance), layers that import one way only,
no import cycle (type-only imports included), small modules, no reach into other objects' privates."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import podium

PKG = Path(podium.__file__).parent

#: Layers, lowest first. A module may import its own layer and the layers below it, never above.
#: The first prefix that matches a module names its layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("podium.errors", "podium.records", "podium.secret", "podium.settings", "podium._auditkey", "podium._serde", "podium._redact", "podium._sqldb", "podium.resilience")),
    (
        "interfaces",
        (
            "podium.storage._base",
            "podium.storage._identity",  # every store's id, which its seals cover (_base.Store.identify)
            "podium.storage._names",  # the schema in a store's name (_base.Store.audit_keys, _identity.bind)
            "podium.models._base",
            "podium.models._errors",
            "podium.embeddings._base",
            "podium.tools._base",
            "podium.vectors._base",
            "podium.classifiers._base",
        ),
    ),
    (
        "plug-ins",
        (
            "podium.storage",
            "podium.models",
            "podium.embeddings",
            "podium.tools",
            "podium.vectors",
            "podium.classifiers",
            "podium.connectors",
        ),
    ),
    ("governance", ("podium.governance", "podium.guardrails")),
    ("engine", ("podium.engine",)),
    (
        "ai, memory, knowledge, yaml",
        ("podium.ai", "podium.memory", "podium.knowledge", "podium.yaml", "podium.telemetry", "podium.validators", "podium.ml", "podium.sandbox"),
    ),
    ("goals", ("podium.goals",)),
    ("surfaces", ("podium.cli", "podium.server")),
]
#: Known exceptions, each with its reason. Keep this list short (it is empty now).
ALLOWED: set[tuple[str, str]] = set()


def _layer(module: str) -> int:
    if module == "podium":
        return len(LAYERS)  # the package root re-exports from every layer
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(_modules())


def _resolve(name: str) -> str | None:
    """The podium module an imported name lives in (a module, or the package that defines it)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str) -> set[str]:
    """Every podium module ``module`` imports: at import time, in a function, or for type checking."""
    path = MODULES[module]
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                root = ".".join(base + ([node.module] if node.module else []))
            else:
                root = node.module or ""
            # `from pkg import sub` imports the submodule; `from pkg import name` the package.
            names = [f"{root}.{a.name}" if f"{root}.{a.name}" in MODULES else root for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for n in names:
            if n.startswith("podium"):
                target = _resolve(n)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {m: imports(m) for m in MODULES}


def test_rooms_exist_and_the_root_is_a_table_of_contents():
    assert (PKG / "engine" / "__init__.py").exists()
    assert (PKG / "governance" / "__init__.py").exists()
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert len(top) <= 12, f"podium/ holds {len(top)} modules (at most 12): {top}"


def test_no_import_cycle():
    """Tarjan's strongly connected components over every import, type-only ones included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w == "podium" or v == "podium":
                continue  # the root re-exports lazily (PEP 562): it is not imported by its modules
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in GRAPH:
        if m not in index:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_layers_point_one_way():
    wrong = []
    for module, deps in GRAPH.items():
        mine = _layer(module)
        for dep in deps:
            if dep == "podium" or (module, dep) in ALLOWED or any(
                module == a and dep.startswith(b) for a, b in ALLOWED
            ):
                continue
            if _layer(dep) > mine:
                wrong.append(f"{module} ({LAYERS[mine][0]}) imports {dep} ({LAYERS[_layer(dep)][0]})")
    assert not wrong, "upward imports:\n" + "\n".join(sorted(wrong))


def test_modules_stay_small():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 800}
    assert not big, f"modules over 800 lines: {big}"


def _slf001(*paths: Path) -> list[str]:
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    out = subprocess.run(
        [*cmd, "check", "--select", "SLF001", "--output-format", "concise", "--no-cache", *map(str, paths)],
        capture_output=True,
        text=True,
    )
    return [line for line in out.stdout.splitlines() if "SLF001" in line]


def test_surfaces_use_only_public_members():
    pytest.importorskip("ruff")
    found = _slf001(PKG / "cli", PKG / "server")
    assert not found, "surfaces read private members:\n" + "\n".join(found)


def test_few_private_reads_in_the_whole_package():
    pytest.importorskip("ruff")
    found = _slf001(PKG)
    assert len(found) < 20, f"{len(found)} reads of another object's private members:\n" + "\n".join(found)


def test_every_error_in_the_tree_is_exported():
    """The tree drawn in podium/errors.py names every error; each is importable where it says."""
    import importlib
    import re

    import podium.errors

    doc = podium.errors.__doc__ or ""
    rows = []
    homes: list[tuple[int, str | None]] = []  # (column, package) of the open branches
    for line in doc.splitlines():
        m = re.search(r"[├└]── (\w+)\s+(?:\((podium\.\w+)\))?", line)
        if m is None:
            continue
        col = m.start()
        homes = [h for h in homes if h[0] < col]
        where = m.group(2) or next((w for _, w in reversed(homes) if w), None)
        homes.append((col, m.group(2)))
        rows.append((m.group(1), where))
    assert len(rows) > 25
    for name, where in rows:
        home = importlib.import_module(where) if where else podium
        if name in ("Suspend", "Shutdown"):
            home = podium.errors  # the engine's own signals: not for user code
        assert hasattr(home, name), f"{name} is drawn in podium/errors.py but not importable from {home.__name__}"
        if home is podium:
            assert name in podium.__all__
    assert issubclass(podium.ConfigError, podium.DefinitionError)
    assert issubclass(podium.PolicyViolation, podium.ExecutionError)
    assert not issubclass(podium.ControlSignal, Exception)

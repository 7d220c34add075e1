"""The public API is pinned, and the layers import one way only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import podium

PKG = Path(podium.__file__).parent

PUBLIC = [
    "AuthError",
    "CapabilityDenied",
    "Client",
    "ConfigError",
    "ConnectorCircuitOpen",
    "ConnectorDrift",
    "ConnectorError",
    "ControlSignal",
    "DefinitionError",
    "Escalate",
    "Event",
    "EventType",
    "ExecutionError",
    "InputValidationError",
    "KillSwitchActive",
    "LeaseLost",
    "Loop",
    "NonRetryableError",
    "NotFound",
    "OutputBlocked",
    "PermissionDenied",
    "PodiumError",
    "Policy",
    "PolicyViolation",
    "PromptVersion",
    "RetryPolicy",
    "RunCancelled",
    "RunFailed",
    "RunHandle",
    "RunHistory",
    "RunRecord",
    "RunStatus",
    "SerializationError",
    "StepContext",
    "StepError",
    "StepStatus",
    "StepTimeout",
    "StepView",
    "Store",
    "StoreError",
    "Workflow",
    "__version__",
    "load_workflow",
    "open_store",
    "run",
]


def test_all_is_pinned_and_sorted():
    assert podium.__all__ == PUBLIC, "a change to the public API must be deliberate: update PUBLIC too"
    assert sorted(podium.__all__) == podium.__all__
    for name in podium.__all__:
        assert hasattr(podium, name)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.level:  # relative: resolve against the package path
                parts = path.relative_to(PKG.parent).with_suffix("").parts[: -node.level]
                found.add(".".join((*parts, node.module)))
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


ENGINE = {"podium.engine.executor", "podium.engine.client", "podium.engine.context"}
SURFACES = ("podium.cli",)


def test_layers_point_one_way():
    """Core types and stores never import the engine; nothing below the surfaces imports them."""
    for path in PKG.rglob("*.py"):
        module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
        deps = _imports(path)
        if module.startswith("podium.storage") or module in {
            "podium.records",
            "podium.errors",
            "podium._serde",
        }:
            assert not deps & ENGINE, f"{module} imports the engine: {deps & ENGINE}"
        if not module.startswith(SURFACES):
            assert not any(d.startswith(SURFACES) for d in deps), f"{module} imports a surface"


def test_import_is_light():
    """`import podium` must not pull in pydantic, rich or a database driver (they load when used)."""
    code = "import sys, podium; print(','.join(m for m in ('pydantic', 'rich', 'psycopg', 'yaml', 'jinja2') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_store_classes_have_one_name_each():
    """``MemoryStore`` is the run store of ``memory://`` and nothing else (the memory layer's
    interface is ``MemoryBackend``). Code tells stores apart by what they declare
    (``Store.in_process``), never by comparing ``type(store).__name__``."""
    import re
    from collections import Counter

    defined: Counter[str] = Counter()
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        defined.update(n.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ClassDef))
        assert not re.search(r"__name__\s*[!=]=\s*[\"']\w*Store[\"']", text), f"{path} tests a class by name"
    assert {name: n for name, n in defined.items() if name.endswith("Store") and n > 1} == {}
    assert defined["MemoryStore"] == 1

"""Finding workflows: import ``module:attr`` or ``file.py:attr``, compile a YAML file, and work
out how a workflow can be found again in another process (its ``ref``)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import sysconfig
import traceback
from typing import Any

from ..errors import ConfigError
from .workflow import Workflow


def guess_ref(wf: Workflow) -> str | None:
    """Where ``wf`` can be imported from in another process, if it is a module-level name."""
    module = sys.modules.get(wf.module or "")
    if module is None:
        return None
    for name, value in vars(module).items():
        if value is wf:
            if wf.module == "__main__":
                path = getattr(module, "__file__", None)
                return f"{os.path.abspath(path)}:{name}" if path else None
            return f"{wf.module}:{name}"
    return None


#: Definition formats other than Python, by name: the module and its functions that compile a file
#: and a text. They are found by name (like storage and model plug-ins), so the engine does not
#: import them.
FORMATS = {"yaml": ("podium.yaml", "load_file", "load_text")}


def _format(kind: str, which: int) -> Any:
    module, *functions = FORMATS[kind]
    try:
        return getattr(importlib.import_module(module), functions[which])
    except ImportError as exc:
        raise ConfigError(f"cannot load {kind.upper()} workflows: {module} is not available ({exc})") from None


def load_text(
    text: str, filename: str, *, base_dir: str | None = None, kind: str = "yaml", **options: Any
) -> Workflow:
    """Compile a workflow definition held as text (a deployed YAML version); ``options`` go to the
    format's compiler (for YAML: ``capabilities``, the registry its references are checked against)."""
    loaded: Workflow = _format(kind, 1)(text, filename, base_dir=base_dir, **options)
    return loaded


def _raised_at(exc: BaseException) -> str:
    """``file:line`` where an import failed: the deepest frame of the user's code (not Python's
    own library, an installed package, Podium, or the import machinery): a module calling
    ``asyncio.run(...)`` at import is named at that call, not inside asyncio. The deepest frame
    outside the import machinery if none is the user's."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    here = os.path.abspath(__file__)
    frames = [f for f in frames if os.path.abspath(f.filename) != here]
    theirs = [f for f in frames if not _not_users(f.filename)]
    at = theirs[-1] if theirs else frames[-1] if frames else None
    return f"{at.filename}:{at.lineno}" if at is not None else "the module"


_PODIUM = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _not_users(filename: str) -> bool:
    """Whether ``filename`` is Python's own library, an installed package or Podium's code."""
    path = os.path.abspath(filename)
    paths = sysconfig.get_paths()
    roots = [_PODIUM, *(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k))]
    return any(path.startswith(os.path.join(os.path.abspath(root), "")) for root in roots)


def load_workflow(ref: str) -> Workflow:
    """Load a workflow from ``module:attr``, ``path/to/file.py:attr`` or a YAML file."""
    if ref.endswith((".yaml", ".yml")):
        loaded: Workflow = _format("yaml", 0)(ref)
        if loaded.ref is None:
            loaded.ref = os.path.abspath(ref)
        return loaded
    module_name, sep, attr = ref.partition(":")
    if not sep or not attr:
        raise ConfigError(f"workflow reference {ref!r} must look like 'package.module:workflow'")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = os.path.abspath(module_name)
            if not os.path.exists(path):
                raise ConfigError(f"workflow file {module_name!r} does not exist")
            name = "podium_user_" + os.path.splitext(os.path.basename(path))[0]
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"cannot load {module_name!r} as a Python module")
            module = importlib.util.module_from_spec(spec)
            earlier = sys.modules.get(name)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                # a half-run module is not left behind; one loaded earlier under that name (the
                # version a watched folder still serves) is put back, not removed
                if earlier is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = earlier
                raise
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} for workflow {ref!r}: {exc}; run podium from the folder "
            "that contains it, or add that folder to PYTHONPATH"
        ) from None
    except ConfigError:
        raise
    except SyntaxError as exc:
        where = f"{exc.filename or module_name}:{exc.lineno}" if exc.lineno else (exc.filename or module_name)
        raise ConfigError(
            f"{where}: syntax error in the module of workflow {ref!r}: {exc.msg}; fix that line and run again"
        ) from None
    except Exception as exc:
        raise ConfigError(
            f"{_raised_at(exc)}: importing the module of workflow {ref!r} raised {type(exc).__name__}: {exc}; "
            "fix the code run when the module is imported (at that line) and run again"
        ) from None
    wf = getattr(module, attr, None)
    if not isinstance(wf, Workflow):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, Workflow))
        raise ConfigError(
            f"{module_name} has no workflow named {attr!r}"
            + (
                f"; workflows there: {', '.join(found)}"
                if found
                else "; define one with podium.Workflow(...)"
            )
        )
    if wf.ref is None:
        wf.ref = ref
    return wf

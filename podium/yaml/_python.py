"""Python functions named by workflow files (``uses: package.module:function``), and who may be named.

A workflow file can call the functions of its own project, not anything importable: otherwise
``uses: os:system`` would run shell commands. A module is allowed when its top-level package is
found under the working directory, the file's folder or the file's project root (the nearest folder
above it with ``pyproject.toml``, ``podium.toml``, ``setup.py`` or ``.git``) and is not installed in
``site-packages``. Always refused: the standard library, ``builtins``, ``podium`` itself, names
starting with ``_``, and anything that is not a plain function defined in the module named.
Installed packages can be allowed by prefix with ``modules=`` or ``PODIUM_YAML_MODULES=pkg,other``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import os
import re
import site
import sys
import sysconfig
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._schema import schema_types

ENV_MODULES = "PODIUM_YAML_MODULES"
_MARKERS = ("pyproject.toml", "podium.toml", "setup.py", "setup.cfg", ".git")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EMPTY = inspect.Parameter.empty


class Refused(Exception):
    """A Python reference cannot be used; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def looks_like_ref(text: str) -> bool:
    """Whether ``uses:`` names a Python function (``package.module:function``)."""
    return ":" in text


def project_root(start: str) -> str:
    """The nearest folder at or above ``start`` with a project marker; ``start`` if none."""
    here = os.path.abspath(start)
    for _ in range(12):
        if any(os.path.exists(os.path.join(here, m)) for m in _MARKERS):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return os.path.abspath(start)


@functools.cache
def _installed_dirs() -> tuple[str, ...]:
    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    with contextlib.suppress(AttributeError):  # some virtualenvs have no getsitepackages
        paths.update(site.getsitepackages())
    user = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    paths.add(user)
    return tuple(os.path.realpath(p) for p in paths if p)


def _under(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _allowed_prefixes(modules: Sequence[str]) -> list[str]:
    env = [m.strip() for m in os.environ.get(ENV_MODULES, "").split(",") if m.strip()]
    return [*modules, *env]


def import_module(name: str, *, base_dir: str | None, modules: Sequence[str] = ()) -> Any:
    """Import module ``name`` for a workflow file in ``base_dir``, if the policy allows it.

    With ``base_dir`` None (a step running, where the file's folder is not known) the module need
    not be under a project folder, but every other rule holds: no standard library, no Podium, no
    private names, nothing installed in site-packages unless allowed by prefix."""
    if not _DOTTED.match(name):
        raise Refused(f"{name!r} is not a module name", "write package.module:function")
    parts = name.split(".")
    if any(p.startswith("_") for p in parts):
        raise Refused(f"module {name!r} is private (a name starts with '_')", "name a public module")
    top = parts[0]
    if top in sys.stdlib_module_names or top in ("builtins", "podium"):
        raise Refused(
            f"module {name!r} is part of {'Podium' if top == 'podium' else 'the Python standard library'}; "
            "a workflow file can call only your project's functions",
            "wrap what you need in a function of your project, or register a step type",
        )
    allowed = any(name == p or name.startswith(p + ".") for p in _allowed_prefixes(modules))
    roots = list(dict.fromkeys([os.path.abspath(base_dir), project_root(base_dir)])) if base_dir else []
    if not allowed:
        spec = _find_top(top, roots)
        if spec is None:
            raise Refused(
                f"cannot find module {top!r}",
                f"run podium from your project folder, or put the module next to the workflow file or in its "
                f"project root ({roots[-1] if roots else os.getcwd()})",
            )
        places = list(spec.submodule_search_locations or []) or ([spec.origin] if spec.origin else [])
        trusted = [os.getcwd(), *roots]
        ok = bool(places) and all(
            not any(_under(p, d) for d in _installed_dirs())
            and (base_dir is None or any(_under(p, t) for t in trusted))
            for p in places
        )
        if not ok:
            where = places[0] if places else "an unknown place"
            raise Refused(
                f"module {name!r} is not part of this project (it is in {where}); a workflow file can call only "
                "functions of its own project",
                f"allow installed packages by prefix with {ENV_MODULES}={top} (or modules=[...]), or register "
                "a step type",
            )
    try:
        return importlib.import_module(name)
    except Refused:
        raise
    except Exception as exc:
        hint = _close_module(name) if isinstance(exc, ModuleNotFoundError) and exc.name == name else None
        raise Refused(f"importing {name!r} failed: {type(exc).__name__}: {exc}", hint) from None


def _close_module(name: str) -> str | None:
    """For a mistyped module of a package that imports (examples.suport): the close sibling."""
    import difflib
    import pkgutil

    parent, _, last = name.rpartition(".")
    if not parent:
        return None
    try:
        package = importlib.import_module(parent)
    except Exception:  # the parent is what fails: nothing to compare with
        return None
    names = [m.name for m in pkgutil.iter_modules(getattr(package, "__path__", []))]
    close = difflib.get_close_matches(last, names, n=1)
    return f"did you mean '{parent}.{close[0]}'?" if close else None


def _find_top(top: str, roots: list[str]) -> Any:
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        return spec
    for root in roots:
        if os.path.exists(os.path.join(root, top + ".py")) or os.path.isdir(os.path.join(root, top)):
            if root not in sys.path:
                sys.path.append(root)  # kept: the module must stay importable to load stored values
            importlib.invalidate_caches()
            try:
                return importlib.util.find_spec(top)
            except (ImportError, ValueError):
                return None
    return None


@dataclass(kw_only=True)
class PythonFunction:
    """A resolved ``package.module:function``."""

    ref: str
    fn: Any
    is_async: bool
    takes_ctx: bool
    params: dict[str, inspect.Parameter]
    """Parameters that can be given in ``with:`` (or bound by name), ``ctx`` excluded."""
    var_keyword: bool
    hints: dict[str, Any]
    _adapters: dict[str, Any] = field(default_factory=dict)

    def required(self) -> list[str]:
        return [n for n, p in self.params.items() if p.default is _EMPTY]

    def json_types(self, name: str) -> frozenset[str] | None:
        """JSON types parameter ``name`` (or ``"return"``) accepts, when the annotation says."""
        hint = self.hints.get(name, _EMPTY)
        if hint is _EMPTY or hint is Any:
            return None
        try:
            from pydantic import TypeAdapter

            return schema_types(TypeAdapter(hint).json_schema())
        except Exception:
            return None

    def check_literal(self, name: str, value: Any) -> str | None:
        """Why ``value`` does not fit parameter ``name``'s annotation, or None."""
        try:
            self.coerce(name, value)
        except Exception as exc:
            return str(exc)
        return None

    def coerce(self, name: str, value: Any) -> Any:
        """``value`` checked (and converted, like a Python step's argument) against the annotation."""
        hint = self.hints.get(name, _EMPTY)
        if hint is _EMPTY or hint is Any:
            return value
        adapter = self._adapters.get(name)
        if adapter is None:
            from pydantic import TypeAdapter

            adapter = self._adapters[name] = TypeAdapter(hint)
        try:
            return adapter.validate_python(value)
        except Exception as exc:
            detail = "; ".join(
                f"{'.'.join(map(str, e.get('loc', ()))) or 'value'}: {e.get('msg')}"
                for e in getattr(exc, "errors", lambda: [])()
            ) or str(exc)
            label = getattr(hint, "__name__", repr(hint))
            raise ValueError(f"expected {label}: {detail}") from None


def resolve_function(ref: str, *, base_dir: str | None, modules: Sequence[str] = ()) -> PythonFunction:
    """The function named by ``ref`` (``package.module:function``), checked against the policy."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not _IDENT.match(attr):
        raise Refused(f"{ref!r} is not a function reference", "write package.module:function")
    if attr.startswith("_"):
        raise Refused(f"{attr!r} is private (starts with '_')", "name a public function")
    module = import_module(module_name, base_dir=base_dir, modules=modules)
    fn = getattr(module, attr, None)
    if fn is None:
        public = sorted(
            k
            for k, v in vars(module).items()
            if inspect.isfunction(v) and not k.startswith("_") and v.__module__ == module.__name__
        )
        import difflib

        close = difflib.get_close_matches(attr, public, n=1)
        raise Refused(
            f"module {module_name!r} has no function {attr!r}",
            f"did you mean {close[0]!r}?"
            if close
            else (f"functions there: {', '.join(public)}" if public else None),
        )
    if not inspect.isfunction(fn) or getattr(fn, "__module__", None) != module.__name__:
        raise Refused(
            f"{ref} is not a function defined in {module_name!r} (it is a {type(fn).__name__}"
            f"{' from ' + str(getattr(fn, '__module__', '')) if inspect.isfunction(fn) else ''})",
            "name the module where the function is defined",
        )
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)  # Annotated constraints are checked too
    except Exception:
        hints = {}
    params: dict[str, inspect.Parameter] = {}
    takes_ctx = False
    var_kw = False
    for p in sig.parameters.values():
        ann = hints.get(p.name, p.annotation)
        if p.name == "ctx" or (isinstance(ann, type) and ann.__name__ == "StepContext"):
            takes_ctx = True
            if p.name != "ctx":
                raise Refused(f"{ref}: name the StepContext parameter 'ctx' (it is {p.name!r})")
            continue
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        elif p.kind is p.POSITIONAL_ONLY:
            if p.default is _EMPTY:
                raise Refused(
                    f"{ref}: parameter {p.name!r} is positional-only; workflow files pass arguments by name"
                )
        else:
            params[p.name] = p
    return PythonFunction(
        ref=ref,
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        takes_ctx=takes_ctx,
        params=params,
        var_keyword=var_kw,
        hints=hints,
    )

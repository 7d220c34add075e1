"""Loading a workflow file: read, parse, plan, compile; every problem collected, nothing raised."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine.workflow import Workflow
from ..errors import DefinitionError
from ._broker_triggers import registry_problems
from ._compile import Compiler
from ._plan import Planner
from ._problems import Problem
from ._python import Refused, import_module, project_root
from ._registry import StepTypes, default_registry
from ._source import NOWHERE, read_yaml
from ._spec import Reporter, parse_workflow

log = logging.getLogger("podium.yaml")

MAX_FILE_BYTES = 2_000_000


def display_path(path: str) -> str:
    """``path`` as people would write it: relative to the working directory when inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


class Loader:
    """Loads workflow files with one registry and module policy; shared by a file and its
    subworkflows (so that a cycle of files is found, and a file is compiled once)."""

    def __init__(
        self,
        registry: StepTypes | None = None,
        modules: Sequence[str] = (),
        capabilities: Mapping[str, Any] | None = None,
    ) -> None:
        self.registry = registry if registry is not None else default_registry
        self.modules = tuple(modules)
        self.capabilities = capabilities
        """The capability registry (name -> Capability) to check references against; None: not
        known here, so names are checked when the steps run (paths and templates are checked always)."""
        self.stack: list[str] = []
        self.cache: dict[str, Workflow] = {}
        self.child_problems: list[Problem] = []
        self.resolved = 0

    def load_text(
        self, text: str, file: str, *, base_dir: str, code_file: str | None = None
    ) -> tuple[Workflow | None, list[Problem]]:
        rep = Reporter(file, text)
        try:
            wf, problems = self._load(text, rep, base_dir, code_file or file)
            return wf, sorted(problems, key=lambda p: (p.file != file, p.file, p.line, p.column))
        except RecursionError:
            rep.at(NOWHERE, "the file nests too deeply to be checked", "structure")
        except Exception as exc:  # a loader bug must still come out as a problem, not a traceback
            log.exception("internal error while loading %s", file)
            rep.at(
                NOWHERE,
                f"internal error while checking this file ({type(exc).__name__}: {exc}); please report it",
                "internal",
            )
        return None, rep.problems

    def _load(
        self, text: str, rep: Reporter, base_dir: str, code_file: str
    ) -> tuple[Workflow | None, list[Problem]]:
        doc, problems = read_yaml(text, rep.file)
        rep.problems.extend(problems)
        if doc is None and problems:
            return None, rep.problems
        spec = parse_workflow(doc, rep)
        if spec is None:
            return None, rep.problems
        if self.capabilities is not None and spec.triggers:  # broker triggers name registered connectors
            for span, message, hint in registry_problems(spec.node, self.capabilities):
                rep.at(span, message, "capability", hint=hint)
        first_child = len(self.child_problems)
        before = self.resolved
        plan = Planner(spec, rep, self, base_dir).run()
        rep.problems.extend(self.child_problems[first_child:])
        del self.child_problems[first_child:]
        if rep.problems:
            return None, rep.problems
        try:
            wf = Compiler(plan, file=rep.file, code_file=code_file).build()
        except DefinitionError as exc:
            for message in exc.problems:
                rep.at(spec.node.span, message, "definition")
            return None, rep.problems
        wf.source_text = text  # its fingerprint (see podium.engine.versions)
        self.resolved += sum(1 for p in plan.steps.values() if p.python is not None)  # uses: module:function
        if self.resolved > before:  # where its code came from: the same text beside other code is another workflow
            wf.source_dir = base_dir
        return wf, []

    def load_path(self, path: str) -> tuple[Workflow | None, list[Problem]]:
        full = os.path.abspath(path)
        shown = path if not os.path.isabs(path) else display_path(full)
        if full in self.cache:
            return self.cache[full], []
        try:
            if os.path.getsize(full) > MAX_FILE_BYTES:
                return None, [_file_problem(shown, f"the file is larger than {MAX_FILE_BYTES:,} bytes")]
            with open(full, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            hint = _nearby(full) if isinstance(exc, FileNotFoundError) else None
            return None, [_file_problem(shown, f"cannot read the file: {exc.strerror or exc}", hint)]
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            return None, [_file_problem(shown, f"the file is not UTF-8 text (byte {exc.start})")]
        self.stack.append(full)
        try:
            wf, problems = self.load_text(text, shown, base_dir=os.path.dirname(full), code_file=full)
        finally:
            self.stack.pop()
        if wf is not None:
            wf.ref = full
            self.cache[full] = wf
        return wf, problems

    def load_child(self, ref: str, base_dir: str) -> tuple[Workflow | None, str, str | None]:
        """A subworkflow named by a file: (the workflow or None, why not, a hint)."""
        self.resolved += 1
        if ref.endswith((".yaml", ".yml")):
            full = os.path.normpath(os.path.join(base_dir, ref))
            root = project_root(base_dir)
            if not (_inside(full, root) or _inside(full, base_dir)):
                return (
                    None,
                    f"is outside this project ({root})",
                    "keep subworkflow files inside the project folder",
                )
            if full in self.stack:
                chain = " -> ".join(display_path(p) for p in [*self.stack[self.stack.index(full) :], full])
                return None, f"files include each other in a cycle ({chain})", None
            if not os.path.isfile(full):
                return (
                    None,
                    "no such file",
                    f"the path is relative to this file's folder ({display_path(base_dir) or '.'})",
                )
            wf, problems = self.load_path(full)
            if wf is None:
                self.child_problems.extend(problems)
                return (
                    None,
                    f"is not valid ({len(problems)} problem{'s' if len(problems) != 1 else ''}, listed with its file)",
                    None,
                )
            return wf, "", None
        module_name, sep, attr = ref.partition(":")
        if not sep or not attr:
            return None, "name a workflow file (.yaml) or MODULE:WORKFLOW", None
        try:
            module = import_module(module_name, base_dir=base_dir, modules=self.modules)
        except Refused as exc:
            return None, exc.message, exc.hint
        wf = getattr(module, attr, None)
        if not isinstance(wf, Workflow):
            found = sorted(k for k, v in vars(module).items() if isinstance(v, Workflow))
            return (
                None,
                f"{module_name} has no workflow named {attr!r}",
                (f"workflows there: {', '.join(found)}" if found else None),
            )
        if wf.ref is None:
            wf.ref = ref
        return wf, "", None


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _file_problem(file: str, message: str, hint: str | None = None) -> Problem:
    return Problem(file=file, line=1, column=1, message=message, code="file", hint=hint)


def _nearby(full: str) -> str | None:
    """For a workflow file that is not there: the close name beside it (hello.yml for hello.yaml),
    else the workflow files of its folder, or that the folder itself is missing."""
    import difflib

    folder = os.path.dirname(full)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith((".yaml", ".yml")))
    except OSError:
        return f"the folder {folder} does not exist"
    close = difflib.get_close_matches(os.path.basename(full), names, n=1, cutoff=0.7)
    if close:
        return f"did you mean {close[0]!r}?"
    if names:
        more = ", ..." if len(names) > 8 else ""
        return f"workflow files in {folder}: {', '.join(names[:8])}{more}"
    return f"{folder} holds no .yaml or .yml file"


def base_dir_for(filename: str, base_dir: str | None) -> str:
    if base_dir is not None:
        return os.path.abspath(base_dir)
    folder = os.path.dirname(os.path.abspath(filename)) if not filename.startswith("<") else os.getcwd()
    return folder if os.path.isdir(folder) else os.getcwd()


__all__: list[Any] = ["Loader"]

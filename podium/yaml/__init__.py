"""Declarative workflows: YAML files that compile to the same :class:`~podium.Workflow` as Python.

::

    wf = podium.yaml.load_file("examples/triage.yaml")      # raises WorkflowFileError
    problems = podium.yaml.validate_file("triage.yaml")     # [] when valid

The format is described in ``docs/yaml.md`` and by the JSON Schema in ``schema.json`` (also
``docs/workflow.schema.json``). New step kinds are added with :func:`register_step_type`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..engine.workflow import Workflow
from ._format import schema_text, workflow_schema
from ._load import Loader, base_dir_for
from ._problems import Problem, WorkflowFileError
from ._registry import StepType, StepTypes, builtin_step_types, default_registry, register_step_type

__all__ = [
    "Problem",
    "StepType",
    "StepTypes",
    "WorkflowFileError",
    "builtin_step_types",
    "check_file",
    "default_registry",
    "load_file",
    "load_text",
    "register_step_type",
    "schema_text",
    "validate_file",
    "validate_text",
    "workflow_schema",
]


def load_file(
    path: str | os.PathLike[str],
    *,
    registry: StepTypes | None = None,
    modules: Sequence[str] = (),
    capabilities: Mapping[str, Any] | None = None,
) -> Workflow:
    """Load the workflow file at ``path``. Raises :class:`WorkflowFileError` listing every problem.

    :param registry: step types ``uses:`` can name (default: :data:`default_registry`).
    :param modules: module prefixes that Python steps may name even outside the project (installed
        packages); ``PODIUM_YAML_MODULES`` adds more.
    :param capabilities: the capability registry (``await client.capabilities()``) to check the
        names the file uses against; without it, names are checked when the steps run.
    """
    name = os.fspath(path)
    wf, problems = Loader(registry, modules, capabilities).load_path(name)
    if wf is None:
        raise WorkflowFileError(name, problems)
    return wf


def load_text(
    text: str,
    filename: str = "<string>",
    *,
    registry: StepTypes | None = None,
    modules: Sequence[str] = (),
    base_dir: str | None = None,
    capabilities: Mapping[str, Any] | None = None,
) -> Workflow:
    """Load a workflow from YAML text; ``filename`` names it in problems, ``base_dir`` (default: the
    file's folder, else the working directory) is where relative paths and modules are found."""
    wf, problems = Loader(registry, modules, capabilities).load_text(
        text, filename, base_dir=base_dir_for(filename, base_dir)
    )
    if wf is None:
        raise WorkflowFileError(filename, problems)
    return wf


def check_file(
    path: str | os.PathLike[str],
    *,
    registry: StepTypes | None = None,
    modules: Sequence[str] = (),
    capabilities: Mapping[str, Any] | None = None,
) -> tuple[Workflow | None, list[Problem]]:
    """The workflow file at ``path`` and its problems: ``(workflow, [])`` or ``(None, problems)``."""
    return Loader(registry, modules, capabilities).load_path(os.fspath(path))


def validate_file(
    path: str | os.PathLike[str],
    *,
    registry: StepTypes | None = None,
    modules: Sequence[str] = (),
    capabilities: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """Every problem of the workflow file at ``path`` (an empty list when it is valid)."""
    return Loader(registry, modules, capabilities).load_path(os.fspath(path))[1]


def validate_text(
    text: str,
    filename: str = "<string>",
    *,
    registry: StepTypes | None = None,
    modules: Sequence[str] = (),
    base_dir: str | None = None,
    capabilities: Mapping[str, Any] | None = None,
) -> list[Problem]:
    """Every problem of a workflow given as YAML text."""
    return Loader(registry, modules, capabilities).load_text(
        text, filename, base_dir=base_dir_for(filename, base_dir)
    )[1]

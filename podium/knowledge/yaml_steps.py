"""Knowledge steps for YAML workflows: ``uses: retrieve`` and ``kb_ingest`` (entry points in
pyproject.toml, like :mod:`podium.memory.yaml_steps`)::

    - id: sources
      uses: retrieve
      with: {kb: handbook, query: "{{ input.question }}", k: 4, hybrid: true}
    - id: answer
      uses: llm
      with:
        prompt: |
          Answer from the sources below and cite them as [n].
          {{ steps.sources.output.context }}
          Question: {{ input.question }}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..memory import yaml_steps as _memory_steps
from ._steps import ingest, retrieve


async def _retrieve(
    ctx: Any, kb: str, query: str, k: int = 5, where: dict[str, Any] | None = None, hybrid: bool = False
) -> dict[str, Any]:
    """Finds the passages of a knowledge base closest to a query; passages, context and citations."""
    return await retrieve(ctx, kb, query, k=k, where=where, hybrid=hybrid)


async def _kb_ingest(
    ctx: Any, kb: str, paths: Any, root: str | None = None, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Ingests files or folders (txt, md, html, pdf) under a registered folder; changed ones only."""
    from ..governance.capabilities import confine_paths
    from ..memory._steps import store_of
    from ._loaders import discover

    listed = [paths] if isinstance(paths, str) else list(paths)
    files = await confine_paths(
        store_of(ctx), listed, root, where=f"step {ctx.step_id!r} (kb_ingest)", discover=discover
    )
    return await ingest(ctx, kb, files, metadata=metadata)


def _kb_ingest_uses(w: Mapping[str, Any]) -> list[Any]:
    """A workflow file reads files only under a folder an admin registered (``root:`` names it)."""
    from ..governance.capabilities import Use, is_template, templated

    uses: list[Any] = []
    root = w.get("root")
    if root is not None:
        if is_template(root):
            return [templated(("root",), "kb_ingest's root")]
        uses.append(Use(at=("root",), kinds=("files",), name=str(root)))
    paths = w.get("paths")
    listed = (
        [(("paths",), paths)]
        if not isinstance(paths, list)
        else [(("paths", i), p) for i, p in enumerate(paths)]
    )
    for at, path in listed:
        if not isinstance(path, str):
            continue
        if is_template(path):
            if root is None:
                uses.append(
                    Use(
                        at=at,
                        problem="a computed path (a template) needs root: the registered folder it must "
                        "stay in",
                        hint="add root: NAME (podium tools list shows the registered folders); the path "
                        "is then resolved inside it, and refused if it leads out",
                    )
                )
            continue
        uses.append(Use(at=at, path=path, root=None if root is None else str(root)))
    return uses


_S: dict[str, Any] = {"type": "string"}
KINDS: dict[str, tuple[Any, dict[str, Any]]] = {
    "retrieve": (
        _retrieve,
        {
            "properties": {
                "kb": {**_S, "description": "knowledge base name"},
                "query": _S,
                "k": {"type": "integer", "minimum": 1, "maximum": 100, "default": 5},
                "where": {"type": "object", "description": "chunk metadata equal to these values"},
                "hybrid": {
                    "type": "boolean",
                    "default": False,
                    "description": "fuse keyword and vector ranks",
                },
            },
            "required": ["kb", "query"],
        },
    ),
    "kb_ingest": (
        _kb_ingest,
        {
            "properties": {
                "kb": _S,
                "paths": {
                    "anyOf": [_S, {"type": "array", "items": _S}],
                    "description": "files or folders, inside root (relative to it) or a registered folder",
                },
                "root": {**_S, "description": "a registered folder (podium tools add NAME --files DIR)"},
                "metadata": {"type": "object", "description": "added to every chunk (filterable)"},
            },
            "required": ["kb", "paths"],
        },
    ),
}


def step_types() -> list[Any]:
    return [
        dataclasses.replace(t, capabilities=_kb_ingest_uses) if t.name == "kb_ingest" else t
        for t in _memory_steps.step_types(KINDS)
    ]


def __getattr__(name: str) -> Any:
    kind = name.removesuffix("_step")
    if name.endswith("_step") and kind in KINDS:
        return next(t for t in step_types() if t.name == kind)
    raise AttributeError(name)

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

from typing import Any

from ..memory import yaml_steps as _memory_steps
from ._steps import ingest, retrieve


async def _retrieve(
    ctx: Any, kb: str, query: str, k: int = 5, where: dict[str, Any] | None = None, hybrid: bool = False
) -> dict[str, Any]:
    """Finds the passages of a knowledge base closest to a query; passages, context and citations."""
    return await retrieve(ctx, kb, query, k=k, where=where, hybrid=hybrid)


async def _kb_ingest(ctx: Any, kb: str, paths: Any, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ingests files or folders (txt, md, html, pdf) into a knowledge base; changed ones only."""
    return await ingest(ctx, kb, paths, metadata=metadata)


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
                "paths": {"anyOf": [_S, {"type": "array", "items": _S}], "description": "files or folders"},
                "metadata": {"type": "object", "description": "added to every chunk (filterable)"},
            },
            "required": ["kb", "paths"],
        },
    ),
}


def step_types() -> list[Any]:
    return _memory_steps.step_types(KINDS)


def __getattr__(name: str) -> Any:
    kind = name.removesuffix("_step")
    if name.endswith("_step") and kind in KINDS:
        return next(t for t in step_types() if t.name == kind)
    raise AttributeError(name)

"""Knowledge bases for retrieval (RAG): ingest txt, Markdown, HTML and PDF; retrieve with citations.

::

    from podium.knowledge import KnowledgeBase, retrieve

    async with Memory("sqlite:///podium.db") as mem:
        kb = KnowledgeBase(mem, "handbook")
        await kb.ingest("docs/")                           # changed documents only
        passages = await kb.search("refund window", k=5, hybrid=True)

    @wf.step
    async def answer(ctx, input):
        found = await retrieve(ctx, "handbook", input["question"], k=4)   # durable
        prompt = f"Answer from these sources, citing [n]:\\n{found['context']}\\n\\nQ: {input['question']}"

See ``docs/memory.md``.
"""

from __future__ import annotations

from ._chunking import Chunk, chunk_text
from ._kb import IngestReport, KnowledgeBase, Passage, format_context, knowledge_bases
from ._loaders import Document, from_text, load
from ._steps import ingest, knowledge_base, retrieve

__all__ = [
    "Chunk",
    "Document",
    "IngestReport",
    "KnowledgeBase",
    "Passage",
    "chunk_text",
    "format_context",
    "from_text",
    "ingest",
    "knowledge_base",
    "knowledge_bases",
    "load",
    "retrieve",
]

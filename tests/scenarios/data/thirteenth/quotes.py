"""What the answer scenario's quote fallback answers when every draft fails (a writer that writes only ``[1] # Heading``):

    PYTHONPATH=. python tests/scenarios/data/thirteenth/quotes.py QUESTIONS.jsonl DOCS_FOLDER [KB]

One JSON line per question (status, reply, quote_similarity, why a draft was withheld), then the run's ``quality``. A
question the moderator doubts goes to a person, who does not answer here (``review_timeout`` 1 s): it is blocked, and
never quoted, as in a run. Nothing leaves the machine: embeddings are the local MiniLM, the writer is scripted.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile


async def main(questions: str, docs: str, kb: str) -> dict:
    from examples.scenarios import answer
    from podium import Client
    from podium.models import register_provider, set_default_gateway
    from podium.models.testing import ScriptedModel

    writes = ScriptedModel([], default="[1] # Heading")
    register_provider("fails13", lambda *a, **k: writes)
    os.environ["PODIUM_MODEL"] = "fails13:any"
    home = tempfile.mkdtemp()
    os.environ["PODIUM_HOME"] = home
    set_default_gateway(None)
    async with Client(f"sqlite:///{home}/a.db") as client:
        return await client.run(answer.workflow, {"questions": questions, "docs": docs, "kb": kb, "review_timeout": 1})


if __name__ == "__main__":
    out = asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "quotes"))
    for a in out["answers"]:
        print(json.dumps({k: a.get(k) for k in ("question", "status", "reply", "quote_similarity", "withheld",
                                                "draft_withheld")}, ensure_ascii=False))
    print(json.dumps(out.get("quality")))
